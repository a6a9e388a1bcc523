/**
 * Placement by resources: a node registered with 4 cpus and 4096 MiB takes runs while their
 * requests fit, not only while it has slots; requests no node can hold are refused at submit.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { addToTestProject, expectError, gql, gqlOk } from "../support/graphql.js";
import { finishedWorkflow, registerNodeScriptTool, REGISTER_TOOL, SUBMIT } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("placement by resource requests");
const NODE = "four-cpu";
const SMALL = "two-cpu";
const REGISTER_NODE = `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id registeredResources { cpus memoryMiB gpus diskMiB } } credential } }`;
const NODE_RESOURCES = `query($id: ID!) { node(id: $id) {
  health { cpus }
  resourceTotals { cpus memoryMiB gpus diskMiB } resourcesInUse { cpus memoryMiB gpus diskMiB } resourcesFree { cpus memoryMiB gpus diskMiB }
} }`;

let env: TestEnv;
/** Sleeps for the milliseconds given as its value; requests 2 cpus by default. */
let twoCpuTool: string;
/** The same, requesting nothing by default. */
let plainTool: string;

test.before(async () => {
  env = await createTestEnv();
  const url = env.orchestrator.url;
  // More slots than the resources allow, so only the resources can hold runs back.
  await gqlOk(url, REGISTER_NODE, { input: { id: NODE, capacity: 8, labels: { pool: "res" }, resources: { cpus: 4, memoryMiB: 4096 } } });
  await gqlOk(url, REGISTER_NODE, { input: { id: SMALL, capacity: 8, labels: { pool: "res" }, resources: { cpus: 2, memoryMiB: 2048, gpus: 0, diskMiB: 10_000 } } });
  await addToTestProject(url, [NODE, SMALL]);
  await env.startAgent(NODE, { capacity: 8 });
  const sleep = "setTimeout(() => {}, Number(process.argv[1]))";
  twoCpuTool = await registerNodeScriptTool(url, "two-cpu-sleeper", sleep, { resources: { cpus: 2 } });
  plainTool = await registerNodeScriptTool(url, "plain-sleeper", sleep);
});

test.after(async () => env?.dispose());

/** Submits one task per key on `nodes` and returns the workflow id. */
async function submitTasks(keys: string[], tool: string, ms: number, resources?: Record<string, number>): Promise<string> {
  const tasks = keys.map((key) => ({ key, tool, nodes: [NODE], params: { value: String(ms) }, ...(resources ? { resources } : {}) }));
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks } });
  return data.submitWorkflow.id;
}

/** The most runs of the workflow that were running at one moment, from their start and end times. */
async function peakConcurrency(workflowId: string): Promise<number> {
  const runs = await env.sql<{ started_at: Date; finished_at: Date }>(`select started_at, finished_at from run where workflow_id = ?`, [workflowId]);
  const edges = runs.flatMap((r) => [
    { at: new Date(r.started_at).getTime(), delta: 1 },
    { at: new Date(r.finished_at).getTime(), delta: -1 },
  ]);
  // An end and a start at the same millisecond do not overlap.
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let peak = 0;
  for (const edge of edges) peak = Math.max(peak, (now += edge.delta));
  return peak;
}

async function resourcesOf(id: string) {
  return (await gqlOk(env.orchestrator.url, NODE_RESOURCES, { id })).node;
}

test("a node registered with 4 cpus runs 2-cpu runs two at a time, and shows what they hold", async () => {
  const workflowId = await submitTasks(["a", "b", "c", "d"], twoCpuTool, 1_500);
  const busy = await waitUntil(
    async () => {
      const node = await resourcesOf(NODE);
      return node.resourcesInUse.cpus === 4 ? node : undefined;
    },
    15_000,
    "two runs to hold 4 cpus",
  );
  assert.is(busy.resourceTotals.cpus, 4);
  assert.is(busy.resourcesFree.cpus, 0);
  assert.is(busy.resourceTotals.memoryMiB, 4096, "the registered total wins over the reported one");
  const [held] = await env.sql<{ n: string }>(`select count(*) n from run where workflow_id = ? and dispatched_at is not null and state in ('QUEUED','ACCEPTED','RUNNING')`, [workflowId]);
  assert.ok(Number(held.n) <= 2, `only two runs are handed to the node at once (${held.n})`);
  const workflow = await finishedWorkflow(env.orchestrator.url, workflowId, 60_000);
  assert.is(workflow.state, "SUCCEEDED");
  assert.is(await peakConcurrency(workflowId), 2);
  const idle = await resourcesOf(NODE);
  assert.equal(idle.resourcesInUse, { cpus: 0, memoryMiB: 0, gpus: 0, diskMiB: 0 });
});

test("memory places runs too: 1536-MiB runs (with half a cpu) run two at a time on 4096 MiB", async () => {
  const workflowId = await submitTasks(["a", "b", "c"], plainTool, 1_200, { cpus: 0.5, memoryMiB: 1536 });
  const task = await gqlOk(env.orchestrator.url, `query($id: ID!) { workflow(id: $id) { tasks { resources { cpus memoryMiB gpus diskMiB } } } }`, { id: workflowId });
  assert.equal(task.workflow.tasks[0].resources, { cpus: 0.5, memoryMiB: 1536, gpus: null, diskMiB: null });
  const workflow = await finishedWorkflow(env.orchestrator.url, workflowId, 60_000);
  assert.is(workflow.state, "SUCCEEDED");
  assert.is(await peakConcurrency(workflowId), 2);
});

test("runs that request nothing are bounded by slots only, beside runs that hold resources", async () => {
  const workflowId = await submitTasks(["a", "b", "c", "d", "e"], plainTool, 2_500);
  assert.is((await finishedWorkflow(env.orchestrator.url, workflowId, 60_000)).state, "SUCCEEDED");
  assert.is(await peakConcurrency(workflowId), 5);
});

test("a request more than a named node has in total is refused at submit, naming the task, the resource and the total", async () => {
  const url = env.orchestrator.url;
  const tooMany = await gql(url, SUBMIT, { input: { tasks: [{ key: "big", tool: twoCpuTool, nodes: [NODE], resources: { cpus: 8 } }] } });
  expectError(tooMany, "BAD_USER_INPUT", /^tasks\[0\]\.resources\.cpus: task "big" requests 8 cpus, more than node "four-cpu" has in total; the largest total of its nodes is 4 cpus$/);
  // From the tool's default, on a second task.
  await gqlOk(url, REGISTER_TOOL, { input: { name: "hungry", version: "1", executable: process.execPath, resources: { memoryMiB: 8192 } } });
  const hungry = await gql(url, SUBMIT, { input: { tasks: [{ key: "ok", tool: plainTool, nodes: [NODE] }, { key: "hungry", tool: "hungry@1", nodes: [NODE, SMALL] }] } });
  expectError(hungry, "BAD_USER_INPUT", /^tasks\[1\]\.resources\.memoryMiB: task "hungry" requests 8192 MiB of memory, more than nodes "four-cpu", "two-cpu" have in total; the largest total of its nodes is 4096 MiB of memory$/);
  const [count] = await env.sql<{ n: string }>(`select count(*) n from task where key in ('big', 'hungry')`);
  assert.is(Number(count.n), 0, "nothing of a refused workflow is stored");
});

test("a nodeSelector leaves out nodes too small for the request, and is refused when none is big enough", async () => {
  const url = env.orchestrator.url;
  const data = await gqlOk(url, SUBMIT, { input: { tasks: [{ key: "three", tool: plainTool, nodeSelector: { pool: "res" }, params: { value: "10" }, resources: { cpus: 3 } }] } });
  assert.equal(data.submitWorkflow.tasks[0].runs.map((r: { node: { id: string } }) => r.node.id), [NODE]);
  assert.is((await finishedWorkflow(url, data.submitWorkflow.id)).state, "SUCCEEDED");
  const refused = await gql(url, SUBMIT, { input: { tasks: [{ key: "huge", tool: plainTool, nodeSelector: { pool: "res" }, resources: { cpus: 16 } }] } });
  expectError(refused, "BAD_USER_INPUT", /^tasks\[0\]\.resources\.cpus: task "huge" requests 16 cpus, more than any node matching nodeSelector has in total; the largest total is 4 cpus$/);
});

test("a total the node did not register is the one its agent reports", async () => {
  const node = await waitUntil(async () => {
    const n = await resourcesOf(NODE);
    return n.health ? n : undefined;
  }, 10_000, "a heartbeat");
  assert.is(node.resourceTotals.gpus, 0, "gpus as reported (this machine has none)");
  assert.ok(node.resourceTotals.diskMiB > 0, "disk as the free disk reported");
  const refused = await gql(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "gpu", tool: plainTool, nodes: [NODE], resources: { gpus: 1 } }] } });
  expectError(refused, "BAD_USER_INPUT", /task "gpu" requests 1 gpu, more than node "four-cpu" has in total; the largest total of its nodes is 0 gpus/);
});

test("invalid amounts are refused with the field and the rule", async () => {
  const url = env.orchestrator.url;
  const submitWith = (resources: Record<string, number>) => gql(url, SUBMIT, { input: { tasks: [{ key: "t", tool: plainTool, nodes: [NODE], resources }] } });
  expectError(await submitWith({ cpus: -1 }), "BAD_USER_INPUT", /^tasks\[0\]\.resources\.cpus: must be more than 0 and at most 1024 \(got -1\)$/);
  expectError(await submitWith({ cpus: 0.0005 }), "BAD_USER_INPUT", /^tasks\[0\]\.resources\.cpus: must be a multiple of 0\.001/);
  expectError(await submitWith({ memoryMiB: 0 }), "BAD_USER_INPUT", /^tasks\[0\]\.resources\.memoryMiB: must be an integer from 1 to 16777216 \(got 0\)$/);
  expectError(await submitWith({ diskMiB: -5 }), "BAD_USER_INPUT", /^tasks\[0\]\.resources\.diskMiB: must be an integer from 1/);
  expectError(await submitWith({ gpus: 65 }), "BAD_USER_INPUT", /^tasks\[0\]\.resources\.gpus: must be an integer from 0 to 64 \(got 65\)$/);
  const tool = await gql(url, REGISTER_TOOL, { input: { name: "bad-request", version: "1", executable: "/bin/true", resources: { memoryMiB: 0 } } });
  expectError(tool, "BAD_USER_INPUT", /^resources\.memoryMiB: must be an integer from 1/);
  const node = await gql(url, REGISTER_NODE, { input: { id: "bad-totals", resources: { cpus: 0 } } });
  expectError(node, "BAD_USER_INPUT", /^resources\.cpus: must be more than 0/);
});

test("the dispatch carries the task's requests, and none when it requests nothing", async () => {
  const requesting = await submitTasks(["r"], twoCpuTool, 10, { memoryMiB: 256 });
  const plain = await submitTasks(["p"], plainTool, 10);
  for (const id of [requesting, plain]) await finishedWorkflow(env.orchestrator.url, id);
  const payloadOf = async (workflowId: string) => {
    const [row] = await env.sql<{ payload: Record<string, unknown> }>(
      `select o.payload from outbox o join run r on r.id = (o.payload->>'runId')::uuid where r.workflow_id = ? and o.payload->>'type' = 'run.dispatch'`,
      [workflowId],
    );
    return row.payload;
  };
  assert.equal((await payloadOf(requesting)).resources, { cpus: 2, memoryMiB: 256 });
  assert.not.ok("resources" in (await payloadOf(plain)));
});

test.run();
