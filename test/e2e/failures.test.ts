import { randomBytes } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { getWorkflow, REGISTER_TOOL, registerNodeScriptTool, SUBMIT, TERMINAL, type RunView } from "../support/fixtures.js";
import { processesWith } from "../support/processes.js";
import { waitUntil } from "../support/wait.js";

const test = suite("runs that fail, time out or are cancelled");
let env: TestEnv;

// Starts a grandchild that sleeps, then sleeps itself: a process tree that outlives a plain kill.
const TREE = `
const { spawn } = require('child_process');
const marker = process.argv[1];
spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)', marker], { stdio: 'ignore' });
console.log('tree started ' + marker);
setTimeout(() => {}, 120000);`;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a"]);
  await env.startAgent("site-a", { capacity: 4 });
});

test.after(async () => env?.dispose());

async function submitOne(tool: string, params: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<{ workflowId: string; taskId: string; runId: string }> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["site-a"], params, ...extra }] } });
  const task = data.submitWorkflow.tasks[0];
  return { workflowId: data.submitWorkflow.id, taskId: task.id, runId: task.runs[0].id };
}

async function finalRun(workflowId: string, timeoutMs = 30_000): Promise<RunView> {
  return waitUntil(
    async () => {
      const run = (await getWorkflow(env.orchestrator.url, workflowId)).tasks[0].runs[0];
      return TERMINAL.includes(run.state) && run.usage.wallMs !== null ? run : undefined;
    },
    timeoutMs,
    "the run to end",
  );
}

test("a non-zero exit ends FAILED with EXIT_CODE and the code", async () => {
  const tool = await registerNodeScriptTool(env.orchestrator.url, "exit3", "console.error('bad input'); process.exit(3)");
  const { workflowId } = await submitOne(tool);
  const run = await finalRun(workflowId);
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "EXIT_CODE");
  assert.is(run.exitCode, 3);
  const workflow = await getWorkflow(env.orchestrator.url, workflowId);
  assert.is(workflow.state, "FAILED");
  assert.is(workflow.tasks[0].state, "FAILED");
});

test("a missing executable ends FAILED with LAUNCH_ERROR naming it", async () => {
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, { input: { name: "ghost", version: "1", executable: "/nonexistent/bin/ghost-tool" } });
  const { workflowId } = await submitOne("ghost@1");
  const run = await finalRun(workflowId);
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "LAUNCH_ERROR");
  assert.match(run.message ?? "", /ghost-tool/);
});

test("a run past its timeout ends FAILED with TIMEOUT and none of its processes survive", async () => {
  const marker = `fem-timeout-${randomBytes(4).toString("hex")}`;
  const tool = await registerNodeScriptTool(env.orchestrator.url, "tree-timeout", TREE);
  const { workflowId } = await submitOne(tool, { value: marker }, { timeoutSeconds: 1 });
  await waitUntil(async () => (await processesWith(marker)).length >= 2, 15_000, "the process tree to start");
  const run = await finalRun(workflowId);
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "TIMEOUT");
  await waitUntil(async () => (await processesWith(marker)).length === 0, 10_000, `no process with ${marker}`);
});

test("cancelling a running task ends CANCELLED and kills its whole process tree", async () => {
  const marker = `fem-cancel-${randomBytes(4).toString("hex")}`;
  const tool = await registerNodeScriptTool(env.orchestrator.url, "tree-cancel", TREE);
  const { workflowId, taskId } = await submitOne(tool, { value: marker });
  await waitUntil(async () => (await getWorkflow(env.orchestrator.url, workflowId)).tasks[0].runs[0].state === "RUNNING", 15_000, "RUNNING");
  await waitUntil(async () => (await processesWith(marker)).length >= 2, 15_000, "the process tree to start");
  const cancelled = await gqlOk(env.orchestrator.url, `mutation($id: ID!) { cancelTask(id: $id) { id state runs { state } } }`, { id: taskId });
  assert.is(cancelled.cancelTask.state, "CANCELLED");
  await waitUntil(async () => (await processesWith(marker)).length === 0, 15_000, `no process with ${marker}`);
  const run = await finalRun(workflowId);
  assert.is(run.state, "CANCELLED");
  assert.is((await getWorkflow(env.orchestrator.url, workflowId)).state, "CANCELLED");
});

test("cancelling a workflow before its run starts means the run never executes", async () => {
  const marker = `fem-never-${randomBytes(4).toString("hex")}`;
  await env.registerNodes(["site-idle"]);
  const tool = await registerNodeScriptTool(env.orchestrator.url, "never", `require('fs').writeFileSync(process.argv[1], 'ran')`);
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["site-idle"], params: { value: marker } }] } });
  const workflowId = data.submitWorkflow.id;
  const result = await gqlOk(env.orchestrator.url, `mutation($id: ID!) { cancelWorkflow(id: $id) { state } }`, { id: workflowId });
  assert.is(result.cancelWorkflow.state, "CANCELLED");
  // The node's agent starts only now: it finds the run and its cancel in its queues.
  await env.startAgent("site-idle");
  await new Promise((r) => setTimeout(r, 2_000));
  const run = (await getWorkflow(env.orchestrator.url, workflowId)).tasks[0].runs[0];
  assert.is(run.state, "CANCELLED");
  const [row] = await env.sql<{ n: string }>(`select count(*) n from log_line where run_id = ? and stream in ('STDOUT','STDERR')`, [run.id]);
  assert.is(Number(row.n), 0, "the process never ran");
});

test.run();
