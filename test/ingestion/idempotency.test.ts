import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createEventPublisher, type EventPublisher } from "../support/amqp.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("idempotent ingestion of node events");
let env: TestEnv;
let events: EventPublisher;
let runId: string;
const nodeId = "site-a";

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes([nodeId]);
  const tool = await registerNodeScriptTool(env.orchestrator.url, "echo", "console.log('hi')");
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: [nodeId] }] } });
  runId = data.submitWorkflow.tasks[0].runs[0].id;
  events = await createEventPublisher(await env.nodeAmqpUrl(nodeId));
});

test.after(async () => {
  await events?.close();
  await env?.dispose();
});

const at = () => new Date().toISOString();
const state = (s: string, extra: Record<string, unknown> = {}) => ({ type: "run.state", v: 1, nodeId, runId, attempt: 1, state: s, at: at(), ...extra });
const logs = (seqs: number[], attempt = 1) => ({
  type: "run.logs",
  v: 1,
  nodeId,
  runId,
  attempt,
  lines: seqs.map((seq) => ({ seq, stream: "STDOUT", at: at(), text: `line ${seq}` })),
});
const heartbeat = () => ({
  type: "node.heartbeat",
  v: 1,
  nodeId,
  at: at(),
  capacity: 2,
  launchers: ["process"],
  activeRuns: [],
  health: { cpus: 2, loadAvg1: 0, memoryTotalBytes: 1, memoryFreeBytes: 1, diskFreeBytes: null, gpus: 0, agentVersion: "test" },
});

async function run() {
  const [row] = await env.sql<Record<string, any>>(`select state, accepted_at, started_at, finished_at, exit_code, log_line_count, wall_ms from run where id = ?`, [runId]);
  return row;
}

/** Publishes a heartbeat and waits until ingestion has handled everything before it. */
async function settle(): Promise<void> {
  const before = env.orchestrator.ingestion.stats().stored;
  await events.publish(heartbeat());
  await waitUntil(() => env.orchestrator.ingestion.stats().stored > before, 10_000, "ingestion to reach the marker");
  await env.orchestrator.ingestion.drain(5_000);
}

test("the same state delivered twice changes nothing the second time", async () => {
  await events.publish(state("ACCEPTED"));
  await waitUntil(async () => (await run()).state === "ACCEPTED", 10_000, "ACCEPTED");
  const first = await run();
  await events.publish(state("ACCEPTED"));
  await settle();
  assert.equal(await run(), first);
});

test("log lines delivered twice, or out of order, are stored once each, in seq order", async () => {
  await events.publish(state("RUNNING"));
  await events.publish(logs([4, 5]));
  await events.publish(logs([1, 2, 3]));
  await events.publish(logs([1, 2, 3]));
  await events.publish(logs([3, 4, 5]));
  await settle();
  const lines = await env.sql<{ seq: number }>(`select seq from log_line where run_id = ? order by seq`, [runId]);
  assert.equal(lines.map((l) => l.seq), [1, 2, 3, 4, 5]);
  assert.is((await run()).log_line_count, 5);
});

test("a terminal state applies once; a late RUNNING and a second terminal state are ignored", async () => {
  const usage = { wallMs: 12, cpuUserMs: 3, cpuSystemMs: 1, peakRssBytes: 1000, logBytes: 30, outputBytes: 0 };
  await events.publish(state("SUCCEEDED", { exitCode: 0, usage }));
  await waitUntil(async () => (await run()).state === "SUCCEEDED", 10_000, "SUCCEEDED");
  const done = await run();
  await events.publish(state("FAILED", { exitCode: 3, failureReason: "EXIT_CODE", usage: { ...usage, wallMs: 99 } }));
  await events.publish(state("RUNNING"));
  await events.publish(state("SUCCEEDED", { exitCode: 0, usage: { ...usage, wallMs: 50 } }));
  await settle();
  assert.equal(await run(), done);
  assert.is(done.wall_ms, 12);
});

test("events for an older attempt change nothing", async () => {
  // As after a retry: the run row now carries attempt 2 and is queued again.
  await env.sql(`update run set attempt = 2, state = 'QUEUED', finished_at = null where id = ?`, [runId]);
  const before = await run();
  await events.publish(state("RUNNING"));
  await events.publish(state("FAILED", { exitCode: 1, failureReason: "EXIT_CODE" }));
  await events.publish(logs([6, 7]));
  await settle();
  assert.equal(await run(), before);
});

test("a malformed message is dead-lettered and ingestion carries on", async () => {
  const deadLetteredBefore = env.orchestrator.ingestion.stats().deadLettered;
  await events.publishRaw(Buffer.from("{not json"), `node.${nodeId}.run.state`);
  await events.publish({ ...state("RUNNING"), attempt: 2, runId: "not-a-uuid" });
  // Another node's name in the body under this node's own routing key (RabbitMQ refuses any other key).
  await events.publish({ ...state("RUNNING"), attempt: 2, nodeId: "someone-else" }, `node.${nodeId}.run.state`);
  await events.publish({ type: "run.explode", v: 1, nodeId });
  await events.publish({ ...state("RUNNING"), attempt: 2 });
  await waitUntil(async () => (await run()).state === "RUNNING", 10_000, "the valid message after the bad ones");
  assert.ok(env.orchestrator.ingestion.stats().deadLettered >= deadLetteredBefore + 3);
});

test("operators see dead letters with where they came from and why", async () => {
  const letters = await waitUntil(async () => {
    const data = await gqlOk(env.orchestrator.url, `{ deadLetters(first: 20) { nodes { queue routingKey reason body } } }`);
    return data.deadLetters.nodes.length >= 4 ? data.deadLetters.nodes : undefined;
  }, 10_000, "4 dead letters to be listed");
  assert.ok(letters.every((l: { queue: string; reason: string }) => l.queue === "fem.orchestrator.node-events" && ["rejected", "forged"].includes(l.reason)));
  // Events of the older attempt, and the one naming another node, were not this node's to send.
  assert.ok(letters.some((l: { reason: string; body: string }) => l.reason === "forged" && l.body.includes("someone-else")), "the event naming another node is forged");
  assert.ok(letters.some((l: { body: string }) => l.body === "{not json"), "even a body that is not JSON is kept");
});

test("a message that keeps failing is dead-lettered after its delivery limit while others keep flowing", async () => {
  // Valid on the wire, but PostgreSQL refuses it every time (a constraint this test adds). An
  // out-of-range exit code no longer serves: it is refused with a reason and ends the run (bounds.test.ts).
  await env.sql(`alter table log_line add constraint test_poison check (text <> 'poison')`);
  try {
    const before = await run();
    await events.publish({ ...logs([100]), attempt: 2, lines: [{ seq: 100, stream: "STDOUT", at: at(), text: "poison" }] });
    await events.publish(heartbeat());
    await settle();
    const letter = await waitUntil(async () => {
      const data = await gqlOk(env.orchestrator.url, `{ deadLetters(first: 1) { nodes { reason deliveryCount body } } }`);
      const newest = data.deadLetters.nodes[0];
      return newest?.reason === "delivery_limit" ? newest : undefined;
    }, 30_000, "the poison message to be dead-lettered");
    assert.match(letter.body, /poison/);
    assert.equal(await run(), before, "the poison changed nothing");
  } finally {
    await env.sql(`alter table log_line drop constraint test_poison`);
  }
});

test.run();
