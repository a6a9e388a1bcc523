import { randomBytes } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createEventPublisher } from "../support/amqp.js";
import { rabbitmqctl } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT, TERMINAL, type WorkflowView } from "../support/fixtures.js";
import { processesWith } from "../support/processes.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("lost nodes, retries and broker disconnects");
let env: TestEnv;

// Prints a line every 100 ms for the given number of milliseconds; its marker is in its argv.
const TICKER = `const [marker, ms] = process.argv.slice(1); let i = 0; const t = setInterval(() => console.log(marker + ' tick ' + ++i), 100); setTimeout(() => { clearInterval(t); console.log('done'); }, Number(ms));`;

test.before(async () => {
  env = await createTestEnv({ heartbeatIntervalMs: 300, missedHeartbeats: 3, nodeLostAfterMs: 2_000 });
  await env.registerNodes(["site-a"]);
  await env.startAgent("site-a");
  await registerNodeScriptTool(env.orchestrator.url, "ticker", TICKER);
});

test.after(async () => env?.dispose());

async function until(workflowId: string, check: (w: WorkflowView) => boolean, what: string, timeoutMs = 30_000): Promise<WorkflowView> {
  return waitUntil(async () => {
    const w = await getWorkflow(env.orchestrator.url, workflowId);
    return check(w) ? w : undefined;
  }, timeoutMs, what);
}

test("a run whose agent is killed is NODE_LOST after the grace period and retried; the old attempt's late messages are ignored", async () => {
  const marker = `fem-lost-${randomBytes(4).toString("hex")}`;
  const data = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: { tasks: [{ key: "t", tool: "ticker@1.0.0", nodes: ["site-a"], params: { value: marker, count: 4_000 }, retry: { maxAttempts: 2, backoffSeconds: 0.1 } }] },
  });
  const id: string = data.submitWorkflow.id;
  await until(id, (w) => w.tasks[0].runs[0].state === "RUNNING", "the first attempt to run");
  await env.agents[0].kill9();
  const lost = await until(id, (w) => w.tasks[0].runs[0].state === "FAILED", "NODE_LOST after the grace period", 15_000);
  const first = lost.tasks[0].runs[0];
  assert.is(first.failureReason, "NODE_LOST");
  assert.is(lost.tasks[0].runs[1]?.attempt, 2, "a second attempt is queued");

  // The restarted agent must not run attempt 1 again; it runs attempt 2.
  await env.startAgent("site-a");
  const done = await until(id, (w) => TERMINAL.includes(w.state), "the retry to finish");
  assert.is(done.state, "SUCCEEDED");
  assert.equal(done.tasks[0].runs.map((r) => [r.attempt, r.state]), [[1, "FAILED"], [2, "SUCCEEDED"]]);
  await waitUntil(async () => (await processesWith(marker)).length === 0, 10_000, "no process of attempt 1 left");

  const events = await createEventPublisher(await env.nodeAmqpUrl("site-a"));
  try {
    const at = new Date().toISOString();
    await events.publish({ type: "run.state", v: 1, nodeId: "site-a", runId: first.id, attempt: 1, state: "RUNNING", at });
    await events.publish({ type: "run.state", v: 1, nodeId: "site-a", runId: first.id, attempt: 1, state: "SUCCEEDED", at, exitCode: 0 });
    await sleep(1_000);
  } finally {
    await events.close();
  }
  const after = await getWorkflow(env.orchestrator.url, id);
  assert.is(after.tasks[0].runs[0].state, "FAILED");
  assert.is(after.tasks[0].runs[0].failureReason, "NODE_LOST");
  assert.is(after.state, "SUCCEEDED");
});

test("a short broker disconnect does not fail the run and loses no log line", async () => {
  const marker = `fem-blip-${randomBytes(4).toString("hex")}`;
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "ticker@1.0.0", nodes: ["site-a"], params: { value: marker, count: 3_000 } }] } });
  const id: string = data.submitWorkflow.id;
  await until(id, (w) => w.tasks[0].runs[0].state === "RUNNING", "the run to start");
  await sleep(500);
  await rabbitmqctl("close_all_connections", "-p", env.vhost.name, "fault test: broker blip");
  const done = await until(id, (w) => TERMINAL.includes(w.state), "the run to finish", 40_000);
  assert.is(done.state, "SUCCEEDED");
  const run = done.tasks[0].runs[0];
  const lines = await env.sql<{ seq: number; text: string }>(`select seq, text from log_line where run_id = ? order by seq`, [run.id]);
  assert.equal(lines.map((l) => l.seq), Array.from({ length: lines.length }, (_, i) => i + 1), "no gap");
  const ticks = lines.filter((l) => l.text.startsWith(`${marker} tick`)).map((l) => Number(l.text.split(" tick ")[1]));
  assert.ok(ticks.length >= 25, `ticks ${ticks.length}`);
  assert.equal(ticks, Array.from({ length: ticks.length }, (_, i) => i + 1), "every tick, in order");
});

test.run();
