import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createEventPublisher, type EventPublisher } from "../support/amqp.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("cancel racing completion");
let env: TestEnv;
let events: EventPublisher;
const N = 50;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-race"], 100);
  events = await createEventPublisher(await env.nodeAmqpUrl("site-race"));
});

test.after(async () => {
  await events?.close();
  await env?.dispose();
});

test(`${N} concurrent cancels and completions end in exactly one terminal state each`, async () => {
  const tool = await registerNodeScriptTool(env.orchestrator.url, "race", "0");
  const tasks = Array.from({ length: N }, (_, i) => ({ key: `t${i}`, tool, nodes: ["site-race"] }));
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks } });
  const runs: { taskId: string; runId: string }[] = data.submitWorkflow.tasks.map((t: { id: string; runs: { id: string }[] }) => ({ taskId: t.id, runId: t.runs[0].id }));
  const at = () => new Date().toISOString();
  // No agent: this test plays the node, so it controls exactly when each completion arrives.
  for (const r of runs) await events.publish({ type: "run.state", v: 1, nodeId: "site-race", runId: r.runId, attempt: 1, state: "RUNNING", at: at() });
  await waitUntil(async () => Number((await env.sql<{ n: string }>(`select count(*) n from run where state = 'RUNNING'`))[0].n) === N, 15_000, "all running");

  const usage = { wallMs: 5, cpuUserMs: 1, cpuSystemMs: 1, peakRssBytes: 1, logBytes: 0, outputBytes: 0 };
  // Completions go into the broker while cancels arrive over HTTP, a few milliseconds apart, so
  // the two reach the database in no fixed order.
  const completions = runs.map((r, i) =>
    events.publish({ type: "run.state", v: 1, nodeId: "site-race", runId: r.runId, attempt: 1, state: i % 2 ? "SUCCEEDED" : "FAILED", at: at(), exitCode: i % 2 ? 0 : 1, failureReason: i % 2 ? null : "EXIT_CODE", usage }),
  );
  const cancels = await Promise.all(
    runs.map(async (r, i) => {
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 40));
      const result = await gqlOk(env.orchestrator.url, `mutation($id: ID!) { cancelTask(id: $id) { state } }`, { id: r.taskId });
      return result.cancelTask.state as string;
    }),
  );
  await Promise.all(completions);
  await env.orchestrator.ingestion.drain(10_000);
  await waitUntil(async () => Number((await env.sql<{ n: string }>(`select count(*) n from run where state = 'RUNNING'`))[0].n) === 0, 15_000, "every race settled");

  const rows = await env.sql<{ run_id: string; state: string; task_state: string; finished_at: Date; message: string | null }>(
    `select r.id run_id, r.state, t.state task_state, r.finished_at, r.message from run r join task t on t.id = r.task_id`,
  );
  assert.is(rows.length, N, "no run was added or lost");
  const byRun = new Map(rows.map((r) => [r.run_id, r]));
  let cancelWon = 0;
  for (const [i, r] of runs.entries()) {
    const row = byRun.get(r.runId)!;
    assert.ok(["CANCELLED", "SUCCEEDED", "FAILED"].includes(row.state), row.state);
    assert.is(row.task_state, row.state, "the task agrees with its only run");
    // What the cancel mutation answered is what stayed: one winner, never overwritten.
    assert.is(cancels[i], row.state);
    if (row.state === "CANCELLED") {
      cancelWon += 1;
      assert.is(row.message, "cancelled by a user");
    }
  }
  const [events2] = await env.sql<{ n: string }>(`select count(*) n from outbox where payload->>'type' = 'run.cancel'`);
  assert.is(Number(events2.n), cancelWon, "a cancel message went out exactly for the runs cancel won");
  console.log(`    (cancel won ${cancelWon} of ${N} races)`);
});

test.run();
