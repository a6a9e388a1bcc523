/**
 * The pieces that let one run's log flow at throughput: several log batches of a run in flight
 * with the terminal state still last, the spool confirmed only up to a gap-free seq, batch sizes
 * counted as JSON, ingestion transactions bounded by lines and bytes, and one live batch object
 * shared by every follower of a run.
 */
import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { jsonTextBytes } from "../../src/agent/log-batcher.js";
import { silentLogger } from "../../src/agent/log.js";
import { createLogSink, type RunSpool } from "../../src/agent/log-spool.js";
import { createOutbox } from "../../src/agent/outbox.js";
import { takeBatch } from "../../src/ingestion/node-events.consumer.js";
import type { LogChange } from "../../src/kernel/index.js";
import { createPubSub } from "../../src/live/pubsub.js";
import { followLogs } from "../../src/logs/log-follower.js";
import { WIRE_VERSION, type AgentEvent, type NodeEvent, type RunLogsEvent } from "../../src/messaging/contracts.js";

const test = suite("log throughput");

const RUN = "00000000-0000-4000-8000-000000000001";
const turn = () => new Promise((resolve) => setImmediate(resolve));

function logs(firstSeq: number, count: number): RunLogsEvent {
  const lines = Array.from({ length: count }, (_, i) => ({ seq: firstSeq + i, stream: "STDOUT" as const, at: new Date(0).toISOString(), text: `line ${firstSeq + i}` }));
  return { type: "run.logs", v: WIRE_VERSION, nodeId: "n", runId: RUN, attempt: 1, lines };
}

/** An outbox whose publishes wait until the test confirms them. */
function heldOutbox(logWindow: number) {
  const pending: { event: AgentEvent; confirm: () => void }[] = [];
  const outbox = createOutbox(
    { nodeId: "n", logWindow },
    { publish: (event) => new Promise<void>((resolve) => pending.push({ event, confirm: resolve })), log: silentLogger },
  );
  return { outbox, pending };
}

test("log batches of one run are in flight together up to the window; the terminal state waits for all", async () => {
  const { outbox, pending } = heldOutbox(2);
  const state: AgentEvent = { type: "run.state", v: WIRE_VERSION, nodeId: "n", runId: RUN, attempt: 1, state: "SUCCEEDED", at: new Date(0).toISOString() };
  const sent = [outbox.send(logs(1, 2)), outbox.send(logs(3, 2)), outbox.send(logs(5, 2)), outbox.send(state)];
  await turn();
  assert.equal(pending.map((p) => (p.event as RunLogsEvent).lines[0]!.seq), [1, 3], "two batches in flight, the third waits");
  pending[1]!.confirm();
  await turn();
  assert.is(pending.length, 3, "the third batch goes once one is confirmed");
  pending[0]!.confirm();
  await turn();
  assert.is(pending.length, 3, "the state waits while a batch before it is unconfirmed");
  pending[2]!.confirm();
  await turn();
  assert.is(pending.length, 4);
  assert.is(pending[3]!.event.type, "run.state");
  pending[3]!.confirm();
  assert.equal(await Promise.all(sent), [true, true, true, true]);
  await outbox.stop({ flushTimeoutMs: 100 });
});

test("ACCEPTED, RUNNING and log batches of a run are in flight together; the terminal state waits for them all", async () => {
  const { outbox, pending } = heldOutbox(4);
  const state = (name: "ACCEPTED" | "RUNNING" | "SUCCEEDED"): AgentEvent => ({ type: "run.state", v: WIRE_VERSION, nodeId: "n", runId: RUN, attempt: 1, state: name, at: new Date(0).toISOString() });
  const sent = [outbox.send(state("ACCEPTED")), outbox.send(state("RUNNING")), outbox.send(logs(1, 1)), outbox.send(state("SUCCEEDED"))];
  await turn();
  assert.equal(pending.map((p) => (p.event.type === "run.state" ? p.event.state : p.event.type)), ["ACCEPTED", "RUNNING", "run.logs"], "RUNNING does not wait for ACCEPTED's confirm");
  pending[1]!.confirm();
  pending[2]!.confirm();
  await turn();
  assert.is(pending.length, 3, "the terminal state waits while ACCEPTED is unconfirmed");
  pending[0]!.confirm();
  await turn();
  assert.is(pending.length, 4);
  pending[3]!.confirm();
  assert.equal(await Promise.all(sent), [true, true, true, true]);
  await outbox.stop({ flushTimeoutMs: 100 });
});

test("nothing follows a terminal state of a run until it is confirmed", async () => {
  const { outbox, pending } = heldOutbox(4);
  const failed: AgentEvent = { type: "run.state", v: WIRE_VERSION, nodeId: "n", runId: RUN, attempt: 1, state: "FAILED", at: new Date(0).toISOString() };
  void outbox.send(failed);
  void outbox.send(logs(1, 1));
  await turn();
  assert.is(pending.length, 1);
  pending[0]!.confirm();
  await turn();
  assert.is(pending.length, 2);
  pending[1]!.confirm();
  await outbox.stop({ flushTimeoutMs: 100 });
});

test("the spool hears of a confirmation only up to the first unconfirmed batch", async () => {
  const { outbox, pending } = heldOutbox(3);
  const confirmed: number[] = [];
  const spool: RunSpool = { append: () => undefined, sync: () => Promise.resolve(), confirmed: (seq) => confirmed.push(seq), close: () => undefined };
  const sink = createLogSink(spool, outbox);
  sink.send(logs(1, 10));
  sink.send(logs(11, 10));
  sink.send(logs(21, 10));
  await sink.handedOver();
  await turn();
  assert.is(pending.length, 3);
  pending[2]!.confirm();
  pending[1]!.confirm();
  await turn();
  assert.equal(confirmed, [], "lines 1–10 are unconfirmed: no segment may go");
  pending[0]!.confirm();
  await turn();
  assert.equal(confirmed, [30], "all three at once");
  assert.ok(sink.idle());
  await outbox.stop({ flushTimeoutMs: 100 });
});

test("a line's size in a batch is its JSON text, escapes included", () => {
  assert.is(jsonTextBytes("plain text"), 10);
  assert.is(jsonTextBytes("é"), 2);
  assert.is(jsonTextBytes('a"b'), 4);
  assert.is(jsonTextBytes("\u0001"), 6);
  assert.is(jsonTextBytes("tab\there"), 9);
  assert.is(jsonTextBytes("😀"), 4);
});

test("an ingestion transaction takes messages up to its line and byte limits, and always one", () => {
  const item = (lines: number, bytes: number): { event: NodeEvent; delivery: { body: Buffer } } => ({ event: logs(1, lines), delivery: { body: Buffer.alloc(bytes) } });
  const buffer = [item(4_000, 10), item(4_000, 10), item(4_000, 10), item(1, 10)];
  assert.is(takeBatch(buffer, { maxBatch: 200, maxLines: 10_000, maxBytes: 1_000 }).length, 2, "8,000 lines; 12,000 would pass the limit");
  assert.is(takeBatch(buffer, { maxBatch: 1, maxLines: 10_000, maxBytes: 1_000 }).length, 1);
  assert.is(takeBatch([item(20_000, 10), item(1, 10)], { maxBatch: 200, maxLines: 10_000, maxBytes: 1_000 }).length, 1, "a message over the limit goes alone");
  assert.is(takeBatch([item(1, 600), item(1, 600)], { maxBatch: 200, maxLines: 10_000, maxBytes: 1_000 }).length, 1, "bytes bound it too");
});

test("followers of a run that are caught up deliver the same batch object, in order, once each", async () => {
  const pubsub = createPubSub(100);
  const follow = () =>
    followLogs({ topic: "logs", pubsub, cursors: new Map([[RUN, 0]]), read: () => Promise.resolve([]) });
  const a = follow();
  const b = follow();
  // Each first reads the (empty) database, then waits for live lines.
  const firstA = a.next();
  const firstB = b.next();
  await turn();
  const change = (from: number, count: number): LogChange => ({ runId: RUN, taskId: RUN, workflowId: RUN, lines: logs(from, count).lines });
  pubsub.publish("logs", change(1, 3));
  pubsub.publish("logs", change(4, 2));
  const [one, two] = await Promise.all([firstA, firstB]);
  assert.ok(one.value === two.value, "one object for both followers");
  assert.equal(one.value!.lines.map((l: { seq: number }) => l.seq), [1, 2, 3]);
  const [three, four] = await Promise.all([a.next(), b.next()]);
  assert.ok(three.value === four.value);
  assert.equal(three.value!.lines.map((l: { seq: number }) => l.seq), [4, 5]);
  // A batch that overlaps what a follower has goes out line by line, without the lines it has.
  pubsub.publish("logs", change(5, 3));
  const rest = await a.next();
  assert.equal(rest.value!.lines.map((l: { seq: number }) => l.seq), [6, 7]);
  await a.return!();
  await b.return!();
});

test("whole batches announced out of order still go out as they are, in order, without reading the database", async () => {
  const pubsub = createPubSub(100);
  let reads = 0;
  const follower = followLogs({ topic: "logs", pubsub, cursors: new Map([[RUN, 0]]), read: () => ((reads += 1), Promise.resolve([])) });
  const first = follower.next();
  await turn();
  const change = (from: number, count: number): LogChange => ({ runId: RUN, taskId: RUN, workflowId: RUN, lines: logs(from, count).lines });
  const later = change(4, 2);
  const earlier = change(1, 3);
  pubsub.publish("logs", later);
  pubsub.publish("logs", earlier);
  const one = await first;
  const two = await follower.next();
  assert.equal(one.value!.lines.map((l: { seq: number }) => l.seq), [1, 2, 3]);
  assert.equal(two.value!.lines.map((l: { seq: number }) => l.seq), [4, 5]);
  assert.is(reads, 1, "only the replay's first (empty) read");
  await follower.return!();
});

test.run();
