import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createPubSub, SlowSubscriberError } from "../../src/live/pubsub.js";
import { followLogs } from "../../src/logs/log-follower.js";
import type { StoredLogLine } from "../../src/logs/log.service.js";
import { LogStream } from "../../src/runs/run-state.js";
import { withTimeout } from "../support/wait.js";

const test = suite("live event buffers");

test("delivers events in order to each subscriber", async () => {
  const pubsub = createPubSub(10);
  const a = pubsub.subscribe<number>("t");
  const b = pubsub.subscribe<number>("t");
  for (let i = 1; i <= 3; i++) pubsub.publish("t", i);
  for (const sub of [a, b]) {
    assert.equal([(await sub.next()).value, (await sub.next()).value, (await sub.next()).value], [1, 2, 3]);
  }
  await a.return();
  await b.return();
  assert.is(pubsub.subscriberCount("t"), 0);
});

test("cuts off a subscriber that stops reading instead of growing without bound", async () => {
  const pubsub = createPubSub(5);
  const slow = pubsub.subscribe<number>("t");
  const fast = pubsub.subscribe<number>("t");
  const received: number[] = [];
  const reading = (async () => {
    for await (const n of fast) {
      received.push(n);
      if (n === 100) break;
    }
  })();
  for (let i = 1; i <= 100; i++) {
    pubsub.publish("t", i);
    await Promise.resolve();
  }
  await withTimeout(reading, 2_000, "the fast subscriber");
  assert.is(received.length, 100, "a reading subscriber is not affected");
  try {
    await slow.next();
    assert.unreachable("the slow subscriber should have been cut off");
  } catch (err) {
    assert.instance(err, SlowSubscriberError);
  }
  assert.is(pubsub.subscriberCount("t"), 0, "the slow subscriber no longer listens");
});

test("a log follower that falls behind its buffer re-reads the database and still misses nothing", async () => {
  const pubsub = createPubSub(10);
  const stored: StoredLogLine[] = [];
  const line = (seq: number): StoredLogLine => ({ runId: "r", seq, stream: LogStream.STDOUT, at: new Date(), text: `l${seq}` });
  let reads = 0;
  const follower = followLogs({
    topic: "logs:r",
    pubsub,
    cursors: new Map([["r", 0]]),
    read: async (_run, after, limit) => {
      reads += 1;
      return stored.filter((l) => l.seq > after).slice(0, limit);
    },
    pageLines: 50,
    bufferLines: 20,
  });
  // 500 lines are "committed" and announced while nobody reads the follower.
  for (let seq = 1; seq <= 500; seq++) {
    stored.push(line(seq));
    pubsub.publish("logs:r", { runId: "r", taskId: "t", workflowId: "w", lines: [{ seq, stream: "STDOUT", at: new Date().toISOString(), text: `l${seq}` }] });
  }
  const seqs: number[] = [];
  while (seqs.length < 500) {
    const { value } = await withTimeout(follower.next(), 2_000, "the next batch");
    seqs.push(...value!.lines.map((l: StoredLogLine) => l.seq));
  }
  await follower.return!();
  assert.equal(seqs, Array.from({ length: 500 }, (_, i) => i + 1));
  assert.ok(reads >= 10, "pages came from the database");
});

test.run();
