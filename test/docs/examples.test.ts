/**
 * Every file under examples/ (shown in README.md and docs/) runs here, as the docs tell a user to
 * run it, against a real orchestrator and real agents: `node examples/graphql.mjs <operation>
 * <variables>` for the GraphQL operations, graphql-ws for the subscription, and
 * `node examples/follow-logs.mjs <runId>` as a child process.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Client } from "graphql-ws";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { topics } from "../../src/live/topics.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { collect, TEST_ADMIN_SUBJECT, TEST_ADMIN_TOKEN, wsClient } from "../support/graphql.js";
import { runScript, startScript, type ScriptProcess } from "../support/script.js";
import { waitUntil } from "../support/wait.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const EXAMPLES = join(ROOT, "examples");
/** Where `npm run build` puts the sample tools; the docs point the tool definitions here with sed. */
const SAMPLE_TOOLS = fileURLToPath(new URL("../../scripts/sample-tools", import.meta.url));

const test = suite("the examples in the docs, run against a real orchestrator and agents");
let env: TestEnv;
let client: Client;
const used = new Set<string>();
let workflowId: string;
let meanTaskId: string;

function example(name: string): string {
  used.add(name);
  return join(EXAMPLES, name);
}

/** `node examples/graphql.mjs <operation> [variables]`; variables are a file under examples/ or JSON text. */
async function graphql<T = any>(operation: string, variables?: string): Promise<T> {
  const args = [example(operation)];
  if (variables !== undefined) args.push(variables.endsWith(".json") ? example(variables) : variables);
  const result = await runScript(example("graphql.mjs"), args, { FEM_URL: env.orchestrator.url, FEM_TOKEN: TEST_ADMIN_TOKEN });
  assert.is(result.code, 0, `${operation} ${variables ?? ""}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** The tool definition with the install path replaced, as the docs do with sed. */
async function toolVariables(file: string): Promise<string> {
  return (await readFile(example(file), "utf8")).replaceAll("/opt/fem/tools", SAMPLE_TOOLS);
}

interface RunView {
  id: string;
  node: { id: string };
  attempt: number;
  state: string;
  exitCode: number | null;
  message: string | null;
  argv: string[];
  result: any;
  logLineCount: number;
  dispatchedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  usage: { wallMs: number; logBytes: number };
}
interface GraphView {
  workflow: { id: string; state: string; finishedAt: string | null; tasks: { id: string; key: string; state: string; dependsOn: { key: string }[]; tool: { ref: string }; runs: RunView[] }[] };
}

function taskOf(workflow: GraphView["workflow"], key: string): GraphView["workflow"]["tasks"][number] {
  const task = workflow.tasks.find((t) => t.key === key);
  if (!task) throw new Error(`no task ${key} in ${JSON.stringify(workflow.tasks.map((t) => t.key))}`);
  return task;
}

test.before(async () => {
  env = await createTestEnv();
  client = wsClient(env.orchestrator.wsUrl);
});

test.after(async () => {
  await client?.dispose();
  await env?.dispose();
});

test("register-node.graphql registers the nodes; nodes.graphql pages through them once their agents are online", async () => {
  const a = await graphql("register-node.graphql", "register-node.json");
  assert.is(a.registerNode.node.id, "hospital-a");
  assert.equal(a.registerNode.node.launchers, ["process"]);
  assert.is(a.registerNode.node.connectivity, "OFFLINE");
  assert.match(a.registerNode.credential, /^fem_node_/);
  const b = await graphql("register-node.graphql", `{"input": {"id": "hospital-b", "labels": {"kind": "hospital"}}}`);
  assert.equal(b.registerNode.node.labels, { kind: "hospital" });
  const project = await graphql("create-project.graphql", `{"name": "oncology", "description": "federated statistics across hospitals"}`);
  assert.is(project.createProject.name, "oncology");
  const member = await graphql("add-project-member.graphql", `{"project": "oncology", "subject": "${TEST_ADMIN_SUBJECT}", "role": "OWNER"}`);
  assert.equal(member.addProjectMember.role, "OWNER");
  await graphql("add-project-node.graphql", `{"project": "oncology", "node": "hospital-a"}`);
  const joined = await graphql("add-project-node.graphql", `{"project": "oncology", "node": "hospital-b"}`);
  assert.equal(joined.addProjectNode.nodeIds, ["hospital-a", "hospital-b"]);
  await Promise.all([env.startAgent("hospital-a"), env.startAgent("hospital-b")]);

  const online = `{"filter": {"connectivity": "ONLINE", "labels": {"kind": "hospital"}}, "first": 1}`;
  const first = await waitUntil(
    async () => {
      const page = await graphql("nodes.graphql", online);
      return page.nodes.pageInfo.hasNextPage ? page : undefined;
    },
    20_000,
    "both nodes to be online",
    250,
  );
  assert.equal(first.nodes.nodes.map((n: { id: string }) => n.id), ["hospital-a"]);
  assert.ok(first.nodes.nodes[0].health.cpus > 0);
  const next = await graphql("nodes.graphql", `{"filter": {"connectivity": "ONLINE", "labels": {"kind": "hospital"}}, "first": 1, "after": "${first.nodes.pageInfo.endCursor}"}`);
  assert.equal(next.nodes.nodes.map((n: { id: string }) => n.id), ["hospital-b"]);
  assert.is(next.nodes.pageInfo.hasNextPage, false);
});

test("register-tool.graphql registers both sample tools at the path where the nodes have them", async () => {
  const stats = await graphql("register-tool.graphql", await toolVariables("local-stats.tool.json"));
  assert.is(stats.registerTool.ref, "local-stats@1.0.0");
  assert.is(stats.registerTool.executable, "node");
  assert.equal(stats.registerTool.args.at(-1), { id: "delayMs", type: "INT", default: 200, position: 3, prefix: "--delay-ms=", separate: false, required: false });
  const aggregate = await graphql("register-tool.graphql", await toolVariables("fedavg-aggregate.tool.json"));
  assert.is(aggregate.registerTool.ref, "fedavg-aggregate@1.0.0");
});

test("submit-workflow.graphql runs the federated mean; workflow-events.graphql and follow-logs.mjs follow it live", async () => {
  const { submitWorkflow } = await graphql("submit-workflow.graphql", "submit-workflow.json");
  workflowId = submitWorkflow.id;
  const byKey = Object.fromEntries(submitWorkflow.tasks.map((t: { key: string }) => [t.key, t]));
  assert.equal(byKey.stats.runs.map((r: RunView) => r.node.id), ["hospital-a", "hospital-b"]);
  assert.equal(byKey.stats.runs[0].argv, ["node", join(SAMPLE_TOOLS, "local-stats.js"), "--site", "hospital-a", "--values", "4.1,5.3,6.2,5.8,4.9", "--delay-ms=200"]);
  assert.is(byKey.mean.runs[0].state, "PENDING");
  meanTaskId = byKey.mean.id;
  const meanRunId: string = byKey.mean.runs[0].id;

  const events = collect<{ kind: string; state: string; runId: string | null }>(
    client,
    await readFile(example("workflow-events.graphql"), "utf8"),
    { workflowId },
    "workflowEvents",
  );
  let follower: ScriptProcess | null = null;
  try {
    await env.orchestrator.pubsub.waitForSubscribers(topics.workflow(workflowId), 1, 10_000);
    // Started while the run is still PENDING: it waits, then prints the lines as they come.
    follower = startScript(example("follow-logs.mjs"), [meanRunId], { FEM_URL: env.orchestrator.url, FEM_TOKEN: TEST_ADMIN_TOKEN });
    await events.waitFor((items) => items.some((e) => e.kind === "WORKFLOW" && e.state === "SUCCEEDED"), 60_000, "the workflow to succeed");
    assert.equal(events.items.filter((e) => e.runId === meanRunId).map((e) => e.state), ["QUEUED", "ACCEPTED", "RUNNING", "SUCCEEDED"]);
    assert.is(events.items.at(-1)!.kind, "WORKFLOW");

    const followed = await follower.result(30_000);
    assert.is(followed.code, 0, followed.stderr);
    assert.match(followed.stderr, new RegExp(`run ${meanRunId} ended: SUCCEEDED`));
    const stored = await graphql("run-logs.graphql", `{"runId": "${meanRunId}", "afterSeq": 0, "first": 1000}`);
    const lines = stored.runLogs.nodes.map((l: { seq: number; stream: string; text: string }) => `${l.seq} ${l.stream} ${l.text}`);
    assert.equal(followed.stdout.trimEnd().split("\n"), lines, "follow-logs.mjs prints every stored line once, in order");
    assert.ok(lines.includes(`${lines.length - 1} STDOUT federated mean over 8 values: 5.9250`), lines.join("\n"));
  } finally {
    follower?.kill();
    await events.dispose();
  }

  const again = await graphql("submit-workflow.graphql", "submit-workflow.json");
  assert.is(again.submitWorkflow.id, workflowId, "the same idempotency key and content return the first workflow");
});

test("workflow-graph.graphql returns the whole graph with results and usage; run-logs.graphql pages through a run's lines", async () => {
  const { workflow } = await graphql<GraphView>("workflow-graph.graphql", `{"id": "${workflowId}"}`);
  assert.is(workflow.state, "SUCCEEDED");
  assert.ok(workflow.finishedAt);
  const mean = taskOf(workflow, "mean");
  const stats = taskOf(workflow, "stats");
  assert.equal(mean.dependsOn, [{ key: "stats" }]);
  assert.is(mean.tool.ref, "fedavg-aggregate@1.0.0");
  assert.is(mean.runs[0].result.count, 8);
  assert.is(mean.runs[0].result.mean.toFixed(3), "5.925");
  assert.equal(stats.runs.map((r) => [r.node.id, r.result.count, r.result.site]), [["hospital-a", 5, "hospital-a"], ["hospital-b", 3, "hospital-b"]]);
  for (const run of [...mean.runs, ...stats.runs]) {
    assert.is(run.state, "SUCCEEDED");
    assert.is(run.exitCode, 0);
    assert.ok(run.dispatchedAt && run.startedAt && run.finishedAt);
    assert.ok(run.usage.wallMs > 0 && run.usage.logBytes > 0 && run.logLineCount > 0);
  }

  const runA = stats.runs[0];
  const page1 = await graphql("run-logs.graphql", `{"runId": "${runA.id}", "afterSeq": 0, "first": 3}`);
  assert.equal(page1.runLogs.nodes.map((l: { seq: number }) => l.seq), [1, 2, 3]);
  assert.is(page1.runLogs.pageInfo.hasNextPage, true);
  const page2 = await graphql("run-logs.graphql", `{"runId": "${runA.id}", "afterSeq": 3, "first": 1000}`);
  assert.equal(page2.runLogs.nodes.map((l: { seq: number }) => l.seq), Array.from({ length: runA.logLineCount - 3 }, (_, i) => i + 4));
  assert.is(page2.runLogs.pageInfo.hasNextPage, false);
  assert.ok(page2.runLogs.nodes.some((l: { text: string }) => l.text === "hospital-a: mean 5.26 over 5 values"));
});

test("accounting.graphql sums the workflow's usage by node and tool", async () => {
  const { accounting } = await graphql("accounting.graphql", `{"groupBy": ["NODE", "TOOL"], "filter": {"workflowId": "${workflowId}"}}`);
  assert.equal(
    accounting.map((r: { node: string; tool: string; runs: number; succeeded: number }) => [r.node, r.tool, r.runs, r.succeeded]),
    [
      ["hospital-a", "fedavg-aggregate@1.0.0", 1, 1],
      ["hospital-a", "local-stats@1.0.0", 1, 1],
      ["hospital-b", "local-stats@1.0.0", 1, 1],
    ],
  );
  assert.ok(accounting.every((r: { wallMs: number; logBytes: number }) => r.wallMs > 0 && r.logBytes > 0));
});

test("retry-task.graphql runs a finished task again as a new attempt", async () => {
  const { retryTask } = await graphql("retry-task.graphql", `{"id": "${meanTaskId}"}`);
  assert.equal(retryTask.runs.map((r: RunView) => [r.attempt, r.state]), [[1, "SUCCEEDED"], [2, "QUEUED"]]);
  const done = await waitUntil(
    async () => {
      const { workflow } = await graphql<GraphView>("workflow-graph.graphql", `{"id": "${workflowId}"}`);
      return taskOf(workflow, "mean").runs[1]?.state === "SUCCEEDED" && workflow.state === "SUCCEEDED" ? workflow : undefined;
    },
    30_000,
    "the second attempt to succeed",
    250,
  );
  assert.is(taskOf(done, "mean").runs[1].result.mean.toFixed(3), "5.925");
});

test("cancel-workflow.graphql stops a running workflow, and follow-logs.mjs then exits 1", async () => {
  const slow = `{"input": {"project": "oncology", "name": "slow", "tasks": [{"key": "slow", "tool": "local-stats@1.0.0", "nodes": ["hospital-b"], "params": {"site": "hospital-b", "values": "1,2,3,4,5,6,7,8,9,10", "delayMs": 1000}}]}}`;
  const { submitWorkflow } = await graphql("submit-workflow.graphql", slow);
  const runId: string = submitWorkflow.tasks[0].runs[0].id;
  await waitUntil(
    async () => (await graphql<GraphView>("workflow-graph.graphql", `{"id": "${submitWorkflow.id}"}`)).workflow.state === "RUNNING",
    20_000,
    "the slow run to start",
    250,
  );
  const { cancelWorkflow } = await graphql("cancel-workflow.graphql", `{"id": "${submitWorkflow.id}"}`);
  assert.is(cancelWorkflow.state, "CANCELLED");
  assert.equal(cancelWorkflow.tasks[0].runs[0], { id: runId, state: "CANCELLED", message: "cancelled by a user" });
  const followed = await runScript(example("follow-logs.mjs"), [runId], { FEM_URL: env.orchestrator.url, FEM_TOKEN: TEST_ADMIN_TOKEN });
  assert.is(followed.code, 1, followed.stderr);
  assert.match(followed.stderr, /ended: CANCELLED/);
});

test("set-node-admin-state.graphql drains a node and makes it active again", async () => {
  await env.registerNodes(["lab-c"]);
  const drained = await graphql("set-node-admin-state.graphql", `{"id": "lab-c", "state": "DRAINING"}`);
  assert.equal(drained.setNodeAdminState, { id: "lab-c", adminState: "DRAINING" });
  const active = await graphql("set-node-admin-state.graphql", `{"id": "lab-c", "state": "ACTIVE"}`);
  assert.equal(active.setNodeAdminState, { id: "lab-c", adminState: "ACTIVE" });
});

test("dead-letters.graphql lists dead letters (none after these runs)", async () => {
  const { deadLetters } = await graphql("dead-letters.graphql", `{"first": 20}`);
  assert.equal(deadLetters, { nodes: [], pageInfo: { hasNextPage: false, endCursor: null } });
});

test("audit-events.graphql lists the mutations these runs made; audit-chain.graphql finds the chain intact", async () => {
  const { auditEvents } = await graphql("audit-events.graphql", `{"filter": {"action": "setNodeAdminState"}, "first": 20}`);
  assert.equal(
    auditEvents.nodes.map((e: { target: string; outcome: string }) => [e.target, e.outcome]),
    [["node:lab-c", "OK"], ["node:lab-c", "OK"]],
  );
  const { auditChain } = await graphql("audit-chain.graphql");
  assert.is(auditChain.intact, true, auditChain.reason);
  assert.ok(auditChain.checked > 2);
});

test("graphql.mjs prints each error's code and message and exits 1", async () => {
  const result = await runScript(
    example("graphql.mjs"),
    [example("submit-workflow.graphql"), `{"input": {"project": "oncology", "tasks": [{"key": "x", "tool": "nope@1", "nodes": ["hospital-a"]}]}}`],
    { FEM_URL: env.orchestrator.url, FEM_TOKEN: TEST_ADMIN_TOKEN },
  );
  assert.is(result.code, 1);
  assert.is(result.stdout, "");
  assert.is(result.stderr, `BAD_USER_INPUT: tasks[0].tool: unknown tool "nope@1"\n`);
});

test("GET /health answers ok", async () => {
  const response = await fetch(env.orchestrator.url.replace(/\/graphql$/, "/health"), { signal: AbortSignal.timeout(10_000) });
  assert.equal(await response.json(), { status: "ok" });
});

test("every file under examples/ ran in this suite and is shown in the docs", async () => {
  // Folders have their own suites: examples/cli/ runs in test/cli/.
  const files = (await readdir(EXAMPLES, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
  assert.equal(files.filter((f) => !used.has(f)), [], "examples this suite does not run");
  const docs = [await readFile(join(ROOT, "README.md"), "utf8")];
  for (const name of await readdir(join(ROOT, "docs"))) docs.push(await readFile(join(ROOT, "docs", name), "utf8"));
  const text = docs.join("\n");
  for (const file of files) {
    const content = (await readFile(join(EXAMPLES, file), "utf8")).trim();
    assert.ok(text.includes(content), `docs do not show examples/${file} as it is`);
  }
});

test.run();
