import { suite } from "uvu";
import * as assert from "uvu/assert";
import WebSocket from "ws";
import { topics } from "../../src/live/topics.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { CLOSE_SLOW_CONSUMER } from "../../src/graphql/live-delivery.js";
import { TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { waitUntil, withTimeout } from "../support/wait.js";

const test = suite("a subscriber that stops reading");
let env: TestEnv;

test.before(async () => {
  env = await createTestEnv({ subscriberBufferSize: 100 });
});

test.after(async () => env?.dispose());

test("a subscriber that keeps reading gets a burst far larger than its buffer", async () => {
  const { collect, wsClient } = await import("../support/graphql.js");
  const client = wsClient(env.orchestrator.wsUrl);
  try {
    const updates = collect<{ id: string }>(client, "subscription { nodeUpdated { id } }", {}, "nodeUpdated");
    await env.orchestrator.pubsub.waitForSubscribers(topics.allNodes, 1, 5_000);
    for (let i = 0; i < 2_000; i++) env.orchestrator.pubsub.publish(topics.allNodes, { id: `burst-${i}` });
    await updates.waitFor((items) => items.length === 2_000, 20_000, "the whole burst");
    assert.is(updates.items.at(-1)!.id, "burst-1999");
    await updates.dispose();
  } finally {
    await client.dispose();
  }
});

test("subscribers of one document share one source, and each gets every event in order", async () => {
  const { collect, wsClient } = await import("../support/graphql.js");
  await waitUntil(() => env.orchestrator.pubsub.subscriberCount(topics.allNodes) === 0, 10_000, "the first test's subscription to end");
  const base = env.orchestrator.metrics.sources.liveSubscribers();
  const clients = Array.from({ length: 20 }, () => wsClient(env.orchestrator.wsUrl));
  try {
    const collectors = clients.map((client) => collect<{ id: string }>(client, "subscription { nodeUpdated { id } }", {}, "nodeUpdated"));
    await waitUntil(() => env.orchestrator.metrics.sources.liveSubscribers() === base + 20, 10_000, "20 subscribers counted").catch((err: Error) => {
      throw new Error(`${err.message}: ${env.orchestrator.metrics.sources.liveSubscribers()} counted, ${base} before`);
    });
    assert.is(env.orchestrator.pubsub.subscriberCount(topics.allNodes), 1, "one pubsub subscriber serves all 20");
    for (let i = 0; i < 300; i++) env.orchestrator.pubsub.publish(topics.allNodes, { id: `shared-${i}` });
    // One leaves; the others go on.
    await collectors[0].dispose();
    for (let i = 300; i < 600; i++) env.orchestrator.pubsub.publish(topics.allNodes, { id: `shared-${i}` });
    for (const collector of collectors.slice(1)) {
      await collector.waitFor((items) => items.length >= 600, 20_000, "every event");
      assert.equal(collector.items.map((n) => n.id), Array.from({ length: 600 }, (_, i) => `shared-${i}`));
    }
    await Promise.all(collectors.slice(1).map((c) => c.dispose()));
    await waitUntil(() => env.orchestrator.pubsub.subscriberCount(topics.allNodes) === 0, 10_000, "the shared source to close with its last subscriber");
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
  }
});

test("is cut off instead of growing server memory without bound, told so after every event it was sent", async () => {
  const socket = new WebSocket(env.orchestrator.wsUrl, "graphql-transport-ws");
  const messages: { type: string; payload?: { data?: { nodeUpdated?: { id: string } } } }[] = [];
  socket.on("message", (data) => messages.push(JSON.parse(String(data))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.once("close", (code, reason) => resolve({ code, reason: String(reason) })));
  await withTimeout(new Promise((resolve) => socket.once("open", resolve)), 5_000, "the socket to open");
  socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } }));
  await waitUntil(() => messages.some((m) => m.type === "connection_ack"), 5_000, "connection_ack");
  socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: "subscription { nodeUpdated { id name } }" } }));
  await env.orchestrator.pubsub.waitForSubscribers(topics.allNodes, 1, 5_000);
  // The client stops reading: the kernel buffers fill, then the server can send no more.
  (socket as unknown as { _socket: { pause(): void } })._socket.pause();

  const padding = "x".repeat(4_096);
  const heapBefore = process.memoryUsage().heapUsed;
  let published = 0;
  while (published < 50_000 && env.orchestrator.pubsub.subscriberCount(topics.allNodes) > 0) {
    for (let i = 0; i < 500; i++, published++) env.orchestrator.pubsub.publish(topics.allNodes, { id: `node-${published}`, name: padding });
    await new Promise((resolve) => setImmediate(resolve));
  }
  const grownMiB = (process.memoryUsage().heapUsed - heapBefore) / 1_048_576;
  assert.is(env.orchestrator.pubsub.subscriberCount(topics.allNodes), 0, "the slow subscriber was cut off");
  assert.ok(published < 50_000, `cut off after ${published} events`);
  assert.ok(grownMiB < 100, `heap grew ${grownMiB.toFixed(1)} MiB`);
  console.log(`    (cut off after ${published} events of 4 KiB; heap grew ${grownMiB.toFixed(1)} MiB)`);

  // The client reads again: it gets what was sent, in order and without a gap, then the close code.
  (socket as unknown as { _socket: { resume(): void } })._socket.resume();
  const { code, reason } = await withTimeout(closed, 20_000, "the slow consumer's close");
  assert.is(code, CLOSE_SLOW_CONSUMER, `closed with ${code} ${reason}`);
  assert.match(reason, /slow consumer/);
  const ids = messages.filter((m) => m.type === "next").map((m) => m.payload!.data!.nodeUpdated!.id);
  assert.ok(ids.length > 0, "it was sent events before it fell behind");
  ids.forEach((id, i) => assert.is(id, `node-${i}`));
  assert.ok(ids.length < published, `${ids.length} of ${published} events sent before the cut-off`);
});

test.run();
