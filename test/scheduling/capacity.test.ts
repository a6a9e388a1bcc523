import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { processesWith } from "../support/processes.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("capacity, priority and draining");
let env: TestEnv;
let tool: string;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-one"], 1);
  await env.startAgent("site-one", { capacity: 1 });
  // Runs for the number of milliseconds given as its value.
  tool = await registerNodeScriptTool(env.orchestrator.url, "sleeper", "console.log('start'); setTimeout(() => console.log('end'), Number(process.argv[1]))");
});

test.after(async () => env?.dispose());

async function submit(name: string, ms: number, priority = 0): Promise<string> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { name, tasks: [{ key: "t", tool, nodes: ["site-one"], priority, params: { value: String(ms) } }] } });
  return data.submitWorkflow.id;
}

const stateOf = async (id: string) => (await getWorkflow(env.orchestrator.url, id)).state;

test("with capacity 1, queued tasks of different priorities run highest first, across workflows", async () => {
  const blocker = await submit("blocker", 1_500);
  await waitUntil(async () => (await stateOf(blocker)) === "RUNNING", 15_000, "the blocker to run");
  const low = await submit("low", 50, 1);
  const high = await submit("high", 50, 5);
  const mid = await submit("mid", 50, 3);
  await sleep(300);
  const [dispatched] = await env.sql<{ n: string }>(`select count(*) n from run where dispatched_at is not null and state not in ('SUCCEEDED','FAILED')`);
  assert.is(Number(dispatched.n), 1, "only the blocker is on the node while it runs");
  for (const id of [low, high, mid]) await waitUntil(async () => (await stateOf(id)) === "SUCCEEDED", 30_000, "each workflow to succeed");
  const rows = await env.sql<{ name: string }>(
    `select w.name from run r join workflow w on w.id = r.workflow_id where w.name in ('low','mid','high') order by r.started_at`,
  );
  assert.equal(rows.map((r) => r.name), ["high", "mid", "low"]);
});

test("DRAINING lets running work finish and starts nothing new; ACTIVE resumes", async () => {
  const running = await submit("running", 1_200);
  await waitUntil(async () => (await stateOf(running)) === "RUNNING", 15_000, "the first run to start");
  const waiting = await submit("waiting", 50);
  await gqlOk(env.orchestrator.url, `mutation { setNodeAdminState(id: "site-one", state: DRAINING) { adminState } }`);
  await waitUntil(async () => (await stateOf(running)) === "SUCCEEDED", 15_000, "the running work to finish");
  await sleep(1_000);
  assert.is(await stateOf(waiting), "QUEUED", "nothing new starts on a draining node");
  const [row] = await env.sql<{ dispatched_at: Date | null }>(`select dispatched_at from run where workflow_id = ?`, [waiting]);
  assert.is(row.dispatched_at, null);
  await gqlOk(env.orchestrator.url, `mutation { setNodeAdminState(id: "site-one", state: ACTIVE) { adminState } }`);
  await waitUntil(async () => (await stateOf(waiting)) === "SUCCEEDED", 15_000, "the waiting work to run once the node is active");
});

test("DISABLED stops what runs there and fails it with a clear reason", async () => {
  const marker = `fem-disabled-${process.pid}`;
  const doomed = await registerNodeScriptTool(env.orchestrator.url, "doomed", `/* ${marker} */ setTimeout(() => {}, 60000)`);
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: doomed, nodes: ["site-one"] }] } });
  const running: string = data.submitWorkflow.id;
  await waitUntil(async () => (await stateOf(running)) === "RUNNING", 15_000, "the run to start");
  await waitUntil(async () => (await processesWith(marker)).length > 0, 15_000, "the run's process");
  await gqlOk(env.orchestrator.url, `mutation { setNodeAdminState(id: "site-one", state: DISABLED) { adminState } }`);
  const run = (await getWorkflow(env.orchestrator.url, running)).tasks[0].runs[0];
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "NODE_LOST");
  assert.match(run.message ?? "", /disabled by an administrator/);
  await waitUntil(async () => (await processesWith(marker)).length === 0, 15_000, "the agent to stop the run's process");
  await sleep(1_000);
  const later = (await getWorkflow(env.orchestrator.url, running)).tasks[0].runs[0];
  assert.is(later.state, "FAILED", "a disabled node's run is never adopted back by a heartbeat");
  await gqlOk(env.orchestrator.url, `mutation { setNodeAdminState(id: "site-one", state: ACTIVE) { adminState } }`);
});

test.run();
