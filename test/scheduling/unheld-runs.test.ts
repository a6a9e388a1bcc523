/**
 * Runs a live node does not hold, against the real broker and real agents: a dispatch lost with its
 * node's queue is dispatched again and runs exactly once (a late copy of the original is a
 * duplicate to the agent's journal); runs waiting for a busy node are left alone; a RUNNING run that
 * an agent restarted with a wiped sandbox no longer reports fails NODE_LOST and is retried.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import amqp from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dispatchRoutingKey, durableQueueOptions, EXCHANGES, nodeQueueNames } from "../../src/messaging/contracts.js";
import { queueDepth } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { finishedWorkflow, getWorkflow, registerShellTool, SUBMIT, type WorkflowView } from "../support/fixtures.js";
import { gqlOk } from "../support/graphql.js";
import { processesWith } from "../support/processes.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("runs a live node does not hold");
let env: TestEnv;
let markers: string;

test.before(async () => {
  env = await createTestEnv({ heartbeatIntervalMs: 300, missedHeartbeats: 3, unreportedHeartbeats: 3, unreportedRunGraceMs: 1_500 });
  markers = await mkdtemp(join(tmpdir(), "fem-unheld-"));
  // Each execution appends a line to its file (lines = executions), then the first `sleepers` executions sleep.
  await registerShellTool(env.orchestrator.url, "mark", 'echo ran >> "$0"; if [ "$(wc -l < "$0")" -le "$2" ]; then sleep "$1"; fi', [
    { id: "file", type: "STRING", position: 2, required: true },
    { id: "seconds", type: "INT", position: 3, default: 0 },
    { id: "sleepers", type: "INT", position: 4, default: 0 },
  ]);
});

test.after(async () => {
  await env?.dispose();
  if (markers) await rm(markers, { recursive: true, force: true });
});

async function submit(nodeId: string, tasks: { key: string; seconds?: number; sleepers?: number }[], retry?: Record<string, unknown>): Promise<string> {
  const input = {
    tasks: tasks.map((t) => ({ key: t.key, tool: "mark@1", nodes: [nodeId], params: { file: join(markers, `${nodeId}-${t.key}`), seconds: t.seconds ?? 0, sleepers: t.sleepers ?? 0 }, retry })),
  };
  return (await gqlOk(env.orchestrator.url, SUBMIT, { input })).submitWorkflow.id as string;
}

async function executions(nodeId: string, key: string): Promise<number> {
  const text = await readFile(join(markers, `${nodeId}-${key}`), "utf8").catch(() => "");
  return text.split("\n").filter((l) => l === "ran").length;
}

async function dispatchesOf(runId: string): Promise<string[]> {
  const rows = await env.sql<{ attempt: string }>(`select payload->>'attempt' as attempt from outbox where payload->>'type' = 'run.dispatch' and payload->>'runId' = ? order by id`, [runId]);
  return rows.map((r) => r.attempt);
}

test("a dispatch lost with its node's queue is dispatched again and runs exactly once; a late copy of the original does not run", async () => {
  const nodeId = "lost-q";
  await env.registerNodes([nodeId]);
  const id = await submit(nodeId, [{ key: "t" }]);
  const queue = nodeQueueNames(nodeId).runs;
  await waitUntil(async () => (await queueDepth(env.vhost.name, queue)) === 1, 10_000, "the dispatch in the node's queue");

  // The dispatch landed in the queue; then the queue is deleted and declared again, empty.
  const connection = await amqp.connect(env.vhost.url);
  try {
    const channel = await connection.createChannel();
    const original = await channel.get(queue, { noAck: true });
    assert.ok(original, "the original dispatch, kept to deliver late");
    await channel.deleteQueue(queue);
    await channel.assertQueue(queue, durableQueueOptions);
    await channel.bindQueue(queue, EXCHANGES.dispatch, dispatchRoutingKey(nodeId, "run"));
    const agent = await env.startAgent(nodeId);

    const done = await finishedWorkflow(env.orchestrator.url, id, 30_000);
    assert.is(done.state, "SUCCEEDED");
    const runs = done.tasks[0].runs;
    assert.equal(runs.map((r) => [r.attempt, r.state]), [[1, "SUCCEEDED"]]);
    assert.equal(await dispatchesOf(runs[0].id), ["1", "1"], "the same attempt was published twice");
    assert.is(await executions(nodeId, "t"), 1);

    // The original, delivered late, is the same (run, attempt): the agent's journal knows it.
    channel.publish(EXCHANGES.dispatch, dispatchRoutingKey(nodeId, "run"), original.content, original.properties);
    await waitUntil(() => /duplicate delivery|already known/.test(agent.output()), 10_000, "the agent to recognise the late copy");
    await sleep(500);
    assert.is(await executions(nodeId, "t"), 1, "still executed once");
    const after = await getWorkflow(env.orchestrator.url, id);
    assert.equal(after.tasks[0].runs.map((r) => [r.attempt, r.state]), [[1, "SUCCEEDED"]]);
  } finally {
    await connection.close().catch(() => undefined);
  }
});

test("runs waiting for a busy node, in its queue or held by its agent, are not dispatched again", async () => {
  const nodeId = "busy-q";
  // The orchestrator may hand it 3 runs; its agent runs one at a time: one runs, one waits in the
  // agent (delivered, not acked: the queue looks empty), one waits in the queue.
  await env.registerNodes([nodeId], 3);
  await env.startAgent(nodeId, { capacity: 1 });
  const keys = ["a", "b", "c"];
  const id = await submit(nodeId, keys.map((key) => ({ key, seconds: 3, sleepers: 1 })));
  let mostLeftOut = 0;
  let done: WorkflowView | undefined;
  await waitUntil(
    async () => {
      const [{ n }] = await env.sql<{ n: number }>(`select coalesce(max(unreported_heartbeats), 0)::int as n from run where node_id = ?`, [nodeId]);
      mostLeftOut = Math.max(mostLeftOut, n);
      const w = await getWorkflow(env.orchestrator.url, id);
      done = w.state === "SUCCEEDED" || w.state === "FAILED" ? w : undefined;
      return done;
    },
    40_000,
    "the three runs to finish",
    100,
  );
  assert.is(done?.state, "SUCCEEDED");
  assert.ok(mostLeftOut >= 3, `the run in the queue was left out of ${mostLeftOut} heartbeats: only its non-empty queue kept it`);
  for (const task of done!.tasks) {
    assert.equal(task.runs.map((r) => r.attempt), [1], `task ${task.key}: one attempt`);
    assert.equal(await dispatchesOf(task.runs[0].id), ["1"], `task ${task.key}: dispatched once`);
    assert.is(await executions(nodeId, task.key), 1, `task ${task.key}: executed once`);
  }
});

test("a RUNNING run that a restarted agent (sandbox wiped) no longer reports fails NODE_LOST and is retried", async () => {
  const nodeId = "wiped-q";
  await env.registerNodes([nodeId]);
  const agent = await env.startAgent(nodeId);
  const file = join(markers, `${nodeId}-t`);
  const id = await submit(nodeId, [{ key: "t", seconds: 120, sleepers: 1 }], { maxAttempts: 2, backoffSeconds: 0.1 });
  await waitUntil(async () => (await getWorkflow(env.orchestrator.url, id)).tasks[0].runs[0].state === "RUNNING", 15_000, "the run to start");
  await waitUntil(async () => (await executions(nodeId, "t")) === 1, 5_000, "its first execution");

  // The node loses all memory of the run: agent and run killed, journal and sandbox gone.
  await agent.kill9();
  for (const pid of await processesWith(file)) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await rm(join(env.sandboxRoot, nodeId), { recursive: true, force: true });
  await env.startAgent(nodeId);

  const done = await finishedWorkflow(env.orchestrator.url, id, 30_000);
  assert.is(done.state, "SUCCEEDED");
  const [first, second] = done.tasks[0].runs;
  assert.equal([first.attempt, first.state, first.failureReason], [1, "FAILED", "NODE_LOST"]);
  assert.match(first.message ?? "", /^node wiped-q no longer reports this run \(missing from its last \d+ heartbeats, for \d+ s\)$/);
  assert.equal([second?.attempt, second?.state], [2, "SUCCEEDED"]);
  assert.is(await executions(nodeId, "t"), 2, "each attempt executed once");
});

test.run();
