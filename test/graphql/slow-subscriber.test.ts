import { suite } from "uvu";
import * as assert from "uvu/assert";
import WebSocket from "ws";
import { topics } from "../../src/live/topics.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
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

test("is cut off instead of growing server memory without bound", async () => {
  const socket = new WebSocket(env.orchestrator.wsUrl, "graphql-transport-ws");
  const messages: { type: string }[] = [];
  socket.on("message", (data) => messages.push(JSON.parse(String(data))));
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
  socket.terminate();
});

test.run();
