/** Running one tool on one node and checking how the node answered, for the suites about node trust and launchers. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as assert from "uvu/assert";
import type { TestEnv } from "./env.js";
import { finishedWorkflow, getWorkflow, REGISTER_TOOL, SUBMIT, TERMINAL, type RunView } from "./fixtures.js";
import { addToTestProject, gqlOk } from "./graphql.js";
import { waitUntil } from "./wait.js";

/** Registers `nodeId` (offering `launchers`, the orchestrator's default when not given) and adds it to the suite's project. */
export async function registerNode(env: TestEnv, nodeId: string, capacity = 4, launchers?: string[]): Promise<void> {
  await gqlOk(env.orchestrator.url, `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id } } }`, {
    input: { id: nodeId, capacity, ...(launchers ? { launchers } : {}) },
  });
  await addToTestProject(env.orchestrator.url, [nodeId]);
}

/** Submits one task `t` of `tool` on `nodeId`, with `{ value }` as its parameters when given. */
export async function submitOne(env: TestEnv, tool: string, nodeId: string, value?: string): Promise<{ workflowId: string; taskId: string }> {
  const params = value === undefined ? {} : { value };
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: [nodeId], params }] } });
  return { workflowId: data.submitWorkflow.id, taskId: data.submitWorkflow.tasks[0].id };
}

/** The first run of the workflow's first task, as it is now. */
export async function firstRun(env: TestEnv, workflowId: string): Promise<RunView> {
  return (await getWorkflow(env.orchestrator.url, workflowId)).tasks[0]!.runs[0]!;
}

/** The first run once it ended and its usage arrived. */
export async function finalRun(env: TestEnv, workflowId: string, timeoutMs = 30_000): Promise<RunView> {
  return waitUntil(
    async () => {
      const run = await firstRun(env, workflowId);
      return TERMINAL.includes(run.state) && run.usage.wallMs !== null ? run : undefined;
    },
    timeoutMs,
    "the run to end",
  );
}

/** Every log line of the run, in order, one per line. */
export async function runLogText(env: TestEnv, runId: string): Promise<string> {
  const rows = await env.sql<{ text: string }>(`select text from log_line where run_id = ? order by seq`, [runId]);
  return rows.map((r) => r.text).join("\n");
}

/** Submits one task of `tool` on `nodeId` and returns its run once the workflow finished. */
export async function runOn(env: TestEnv, nodeId: string, tool: string): Promise<RunView> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: [nodeId] }] } });
  return (await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id)).tasks[0].runs[0];
}

/** The node refused the run with `message` and made no sandbox for it, so nothing ran. */
export function assertRefused(env: TestEnv, run: RunView, nodeId: string, message: RegExp): void {
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "REJECTED_BY_NODE");
  assert.match(run.message ?? "", message);
  assert.not.ok(existsSync(join(env.sandboxRoot, nodeId, "runs", `${run.id}-1`)), "no sandbox was made, so nothing ran");
}

export interface ReportedLauncher {
  name: string;
  isolation: { network: string; filesystem: string; pidNamespace: boolean; separateUser: boolean; killedWithAgent: boolean; limits: string[] };
}

/** The launchers the node's heartbeats reported, by name, once one reported any. */
export async function reportedLaunchers(env: TestEnv, nodeId: string): Promise<Record<string, ReportedLauncher>> {
  const launchers = await waitUntil(
    async () => {
      const data = await gqlOk(env.orchestrator.url, `query($id: ID!) { node(id: $id) { reportedLaunchers { name isolation { network filesystem pidNamespace separateUser killedWithAgent limits } } } }`, { id: nodeId });
      const reported = data.node.reportedLaunchers as ReportedLauncher[];
      return reported.length > 0 ? reported : undefined;
    },
    10_000,
    "a heartbeat with launchers",
  );
  return Object.fromEntries(launchers.map((l) => [l.name, l]));
}

export interface ScriptToolInput {
  name: string;
  /** An interpreter taking `-c <script>` (sh, python3). */
  executable: string;
  launcher: string;
  script: string;
  image?: string;
  env?: Record<string, string>;
}

/** Registers `name@1` running `<executable> -c <script> <value>` (value "x" unless submitted), with result.json as its result file. */
export async function registerScriptTool(env: TestEnv, tool: ScriptToolInput): Promise<string> {
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
    input: {
      name: tool.name,
      version: "1",
      executable: tool.executable,
      launcher: tool.launcher,
      ...(tool.image === undefined ? {} : { image: tool.image }),
      env: tool.env ?? {},
      resultFile: "result.json",
      args: [
        { id: "script", type: "STRING", position: 0, prefix: "-c", default: tool.script },
        { id: "value", type: "STRING", position: 1, default: "x" },
      ],
    },
  });
  return `${tool.name}@1`;
}
