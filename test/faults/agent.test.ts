import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { nodeBrokerPermissions, nodeBrokerUser } from "../../src/messaging/contracts.js";
import { rabbitmqctl } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT, TERMINAL, type WorkflowView } from "../support/fixtures.js";
import { processesWith } from "../support/processes.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("agent faults");
let env: TestEnv;

// Appends "start" to the file named by its first argument, then runs for the given milliseconds.
const WORKER = `const fs = require('fs'); const [file, ms] = process.argv.slice(1); fs.appendFileSync(file, 'start\\n');
let i = 0; const t = setInterval(() => console.log('working ' + ++i), 100); setTimeout(() => { clearInterval(t); console.log('done'); }, Number(ms));`;

test.before(async () => {
  env = await createTestEnv({ heartbeatIntervalMs: 300, missedHeartbeats: 3, nodeLostAfterMs: 2_000 });
  await env.registerNodes(["site-a"]);
  await registerNodeScriptTool(env.orchestrator.url, "worker", WORKER);
});

test.after(async () => {
  await env?.dispose();
});

async function until(id: string, check: (w: WorkflowView) => boolean, what: string, timeoutMs = 30_000): Promise<WorkflowView> {
  return waitUntil(async () => {
    const w = await getWorkflow(env.orchestrator.url, id);
    return check(w) ? w : undefined;
  }, timeoutMs, what);
}

const executions = async (file: string) => (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean).length;

function submitWorker(file: string, ms: number, node = "site-a", backoffSeconds = 0.1) {
  return gqlOk(env.orchestrator.url, SUBMIT, {
    input: { tasks: [{ key: "t", tool: "worker@1.0.0", nodes: [node], params: { value: file, count: ms }, retry: { maxAttempts: 2, backoffSeconds } }] },
  });
}

test("an agent killed with -9 mid-run and restarted never executes that attempt again; the run is NODE_LOST and retried", async () => {
  const agent = await env.startAgent("site-a");
  const file = join(env.sandboxRoot, `exec-${randomBytes(3).toString("hex")}`);
  const data = await submitWorker(file, 3_000);
  const id = data.submitWorkflow.id;
  await until(id, (w) => w.tasks[0].runs[0].state === "RUNNING", "the run to start");
  await agent.kill9();
  await env.startAgent("site-a");
  const done = await until(id, (w) => TERMINAL.includes(w.state), "the workflow to finish");
  assert.is(done.state, "SUCCEEDED");
  assert.equal(done.tasks[0].runs.map((r) => [r.attempt, r.state, r.failureReason]), [[1, "FAILED", "NODE_LOST"], [2, "SUCCEEDED", null]]);
  assert.is(await executions(file), 2, "attempt 1 ran once and attempt 2 once");
  await env.agents.at(-1)!.stop();
});

test("SIGTERM with the default mode lets a short run finish before the agent exits", async () => {
  const agent = await env.startAgent("site-a");
  const file = join(env.sandboxRoot, `exec-${randomBytes(3).toString("hex")}`);
  const data = await submitWorker(file, 800);
  const id = data.submitWorkflow.id;
  await until(id, (w) => w.tasks[0].runs[0].state === "RUNNING", "the run to start");
  await agent.stop();
  const done = await until(id, (w) => TERMINAL.includes(w.state), "the workflow to finish");
  assert.is(done.state, "SUCCEEDED");
  assert.is(await executions(file), 1);
});

test("SIGTERM in handback mode stops at once and hands the run back: NODE_LOST, then retried when an agent is back", async () => {
  const agent = await env.startAgent("site-a", { env: { FEM_SHUTDOWN_MODE: "handback" } });
  const file = join(env.sandboxRoot, `exec-${randomBytes(3).toString("hex")}`);
  const data = await submitWorker(file, 20_000);
  const id = data.submitWorkflow.id;
  await until(id, (w) => w.tasks[0].runs[0].state === "RUNNING", "the run to start");
  const started = Date.now();
  await agent.stop();
  assert.ok(Date.now() - started < 8_000, "handing back does not wait for the run");
  const lost = await until(id, (w) => w.tasks[0].runs[0].state === "FAILED", "attempt 1 handed back");
  assert.is(lost.tasks[0].runs[0].failureReason, "NODE_LOST");
  assert.match(lost.tasks[0].runs[0].message ?? "", /handed back/);
  await gqlOk(env.orchestrator.url, `mutation($id: ID!) { cancelWorkflow(id: $id) { state } }`, { id });
});

test("a node cut off longer than the grace period, whose run survived, gets that run adopted instead of run twice", async () => {
  // As a network partition looks to the orchestrator: the node's own broker user keeps its vhost
  // (so the agent is not told it was disabled) but may neither read nor write, and its connections drop.
  await env.registerNodes(["site-cut"]);
  const user = nodeBrokerUser(env.vhost.name, "site-cut");
  const granted = nodeBrokerPermissions("site-cut").vhost;
  await env.startAgent("site-cut");
  const marker = `fem-adopt-${randomBytes(3).toString("hex")}`;
  const file = join(env.sandboxRoot, marker);
  // A long backoff: the retry is still waiting when the node comes back. The run outlives the cut,
  // the grace and the agent's reconnect backoff (up to 5 s) even on a loaded machine: one that ended
  // while cut off would be reported finished, not adopted (CI once saw 7 s run out).
  const data = await submitWorker(file, 20_000, "site-cut", 60);
  const id = data.submitWorkflow.id;
  await until(id, (w) => w.tasks[0].runs[0].state === "RUNNING", "the run to start");
  await rabbitmqctl("set_permissions", "-p", env.vhost.name, user, "^$", "^$", "^$");
  await rabbitmqctl("close_all_user_connections", user, "fault test: node cut off");
  const lost = await until(id, (w) => w.tasks[0].runs[0].state === "FAILED", "NODE_LOST after the grace", 15_000);
  assert.is(lost.tasks[0].runs.length, 2, "a retry is queued");
  assert.ok((await processesWith(marker)).length > 0, "the run's process is still alive on the node");
  await rabbitmqctl("set_permissions", "-p", env.vhost.name, user, granted.configure, granted.write, granted.read);
  const adopted = await until(id, (w) => w.tasks[0].runs[0].state === "RUNNING", "the run to be adopted", 20_000);
  assert.is(adopted.tasks[0].runs.length, 1, "the waiting retry was withdrawn");
  assert.match(adopted.tasks[0].runs[0].message ?? "", /adopted/);
  const done = await until(id, (w) => TERMINAL.includes(w.state), "the adopted run to finish");
  assert.is(done.state, "SUCCEEDED");
  assert.is(await executions(file), 1, "executed once");
  await sleep(200);
});

test.run();
