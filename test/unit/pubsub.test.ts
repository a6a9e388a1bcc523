import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createPubSub, HARD_LIMIT_FACTOR, SlowSubscriberError } from "../../src/live/pubsub.js";
import { followLogs } from "../../src/logs/log-follower.js";
import type { LogLine } from "../../src/logs/log-line.entity.js";
import { LogStream } from "../../src/kernel/run-state.js";
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

test("keeps a subscriber that drains a burst larger than its buffer, and cuts off one that stops reading", async () => {
  const pubsub = createPubSub(5, 100);
  const slow = pubsub.subscribe<number>("t");
  const fast = pubsub.subscribe<number>("t");
  // One synchronous burst of 100 events, far more than the buffer of 5.
  for (let i = 1; i <= 100; i++) pubsub.publish("t", i);
  const received: number[] = [];
  for (let i = 0; i < 100; i++) received.push((await withTimeout(fast.next(), 1_000, "the next event")).value!);
  assert.equal(received, Array.from({ length: 100 }, (_, i) => i + 1), "the fast subscriber got the whole burst");
  await new Promise((r) => setTimeout(r, 200));
  pubsub.publish("t", 101);
  assert.is((await withTimeout(fast.next(), 1_000, "the next event")).value, 101, "and is still subscribed");
  try {
    await slow.next();
    assert.unreachable("the slow subscriber should have been cut off");
  } catch (err) {
    assert.instance(err, SlowSubscriberError);
  }
  assert.is(pubsub.subscriberCount("t"), 1, "only the slow subscriber stopped listening");
  await fast.return();
});

test("cuts off at once past the hard limit, whatever the grace", async () => {
  const pubsub = createPubSub(2, 60_000);
  const slow = pubsub.subscribe<number>("t");
  for (let i = 0; i <= 2 * HARD_LIMIT_FACTOR; i++) pubsub.publish("t", i);
  assert.is(pubsub.subscriberCount("t"), 0);
  await slow.next().then(
    () => assert.unreachable("cut off"),
    (err: unknown) => assert.instance(err, SlowSubscriberError),
  );
});

test("a log follower that falls behind its buffer re-reads the database and still misses nothing", async () => {
  const pubsub = createPubSub(10);
  const stored: LogLine[] = [];
  const line = (seq: number): LogLine => ({ runId: "r", seq, stream: LogStream.STDOUT, at: new Date(), text: `l${seq}` });
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
    seqs.push(...value!.lines.map((l: LogLine) => l.seq));
  }
  await follower.return!();
  assert.equal(seqs, Array.from({ length: 500 }, (_, i) => i + 1));
  assert.ok(reads >= 10, "pages came from the database");
});

test("a log replay reads pages bounded by text as well as by lines, and holds no more", async () => {
  const pubsub = createPubSub(10);
  const text = "x".repeat(1_000);
  const stored: LogLine[] = Array.from({ length: 200 }, (_, i) => ({ runId: "r", seq: i + 1, stream: LogStream.STDOUT, at: new Date(), text }));
  const pages: number[] = [];
  const follower = followLogs({
    topic: "logs:r",
    pubsub,
    cursors: new Map([["r", 0]]),
    // As readLogs: stop once the text read reaches maxChars.
    read: async (_run, after, limit, maxChars) => {
      const page: LogLine[] = [];
      let chars = 0;
      for (const l of stored.filter((x) => x.seq > after).slice(0, limit)) {
        if (chars >= maxChars) break;
        page.push(l);
        chars += l.text.length;
      }
      pages.push(page.length);
      return page;
    },
    pageLines: 1_000,
    pageChars: 10_000,
  });
  const seqs: number[] = [];
  while (seqs.length < 200) {
    const { value } = await withTimeout(follower.next(), 2_000, "the next batch");
    assert.ok(value!.lines.length <= 10, `a batch of ${value!.lines.length} lines of 1,000 characters`);
    seqs.push(...value!.lines.map((l: LogLine) => l.seq));
  }
  await follower.return!();
  assert.equal(seqs, Array.from({ length: 200 }, (_, i) => i + 1));
  assert.ok(pages.length >= 20, "twenty pages of 10 lines");
});

test("a log follower delivers every line once and in order whatever the announcements: reordered, overlapping, repeated, lost, or past its buffer", async () => {
  // A seeded generator: the same cases every run, many shapes of trouble.
  let seed = 42;
  const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const line = (seq: number): LogLine => ({ runId: "r", seq, stream: LogStream.STDOUT, at: new Date(0), text: `l${seq}` });
  const wire = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i, stream: "STDOUT", at: new Date(0).toISOString(), text: `l${from + i}` }));
  for (let round = 0; round < 40; round++) {
    const pubsub = createPubSub(1_000);
    const total = 300 + Math.floor(random() * 300);
    const stored: LogLine[] = [];
    const follower = followLogs({
      topic: "logs:r",
      pubsub,
      cursors: new Map([["r", 0]]),
      read: async (_run, after, limit) => stored.filter((l) => l.seq > after).slice(0, limit),
      pageLines: 1 + Math.floor(random() * 60),
      bufferLines: 20 + Math.floor(random() * 200),
      gapRecheckMs: 5,
    });
    const seqs: number[] = [];
    const reader = (async () => {
      while (seqs.length < total) {
        const { value } = await withTimeout(follower.next(), 5_000, `round ${round}: line ${seqs.length + 1} of ${total}`);
        seqs.push(...value!.lines.map((l: LogLine) => l.seq));
      }
    })();
    // Batches are stored in order; each is announced late, twice, merged with its neighbour, or not at all.
    const batches: [number, number][] = [];
    for (let from = 1; from <= total; ) {
      const to = Math.min(total, from + Math.floor(random() * 40));
      batches.push([from, to]);
      from = to + 1;
    }
    const held: [number, number][] = [];
    for (const [from, to] of batches) {
      for (let seq = from; seq <= to; seq++) stored.push(line(seq));
      const roll = random();
      // Lost: only the database has it (not the last: with nothing announced after it, no follower could know).
      if (roll < 0.1 && to < total) continue;
      if (roll < 0.25) held.push([from, to]); // announced after later ones
      else pubsub.publish("logs:r", { runId: "r", taskId: "t", workflowId: "w", lines: wire(from, to) });
      if (roll > 0.85) pubsub.publish("logs:r", { runId: "r", taskId: "t", workflowId: "w", lines: wire(Math.max(1, from - 5), to) }); // overlapping repeat
      if (random() < 0.3) await new Promise((resolve) => setImmediate(resolve));
      if (held.length > 0 && random() < 0.3) {
        const [a, b] = held.shift()!;
        pubsub.publish("logs:r", { runId: "r", taskId: "t", workflowId: "w", lines: wire(a, b) });
      }
    }
    for (const [a, b] of held) pubsub.publish("logs:r", { runId: "r", taskId: "t", workflowId: "w", lines: wire(a, b) });
    await reader;
    await follower.return!();
    assert.equal(seqs, Array.from({ length: total }, (_, i) => i + 1), `round ${round}`);
  }
});

test.run();
