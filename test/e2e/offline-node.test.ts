import { suite } from "uvu";
import * as assert from "uvu/assert";
import { nodeQueueNames } from "../../src/messaging/contracts.js";
import { queueDepth } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { collect, gqlOk, wsClient } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { topics } from "../../src/live/topics.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("nodes that are offline");
let env: TestEnv;

test.before(async () => {
  env = await createTestEnv({ heartbeatIntervalMs: 300, missedHeartbeats: 3 });
  await env.registerNodes(["site-late"]);
});

test.after(async () => env?.dispose());

test("work for a node whose agent is not running waits in its queue and runs once the agent starts", async () => {
  const tool = await registerNodeScriptTool(env.orchestrator.url, "hello", "console.log('hello from ' + process.argv[1])");
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["site-late"], params: { value: "late" } }] } });
  const workflowId = data.submitWorkflow.id;
  await waitUntil(async () => (await queueDepth(env.vhost.name, nodeQueueNames("site-late").runs)) === 1, 10_000, "the run in the node's queue");
  await sleep(500);
  assert.is((await getWorkflow(env.orchestrator.url, workflowId)).tasks[0].runs[0].state, "QUEUED");
  await env.startAgent("site-late");
  await waitUntil(async () => (await getWorkflow(env.orchestrator.url, workflowId)).state === "SUCCEEDED", 30_000, "the workflow to succeed");
});

test("heartbeats mark a node ONLINE; silence marks it OFFLINE; nodeUpdated streams both", async () => {
  const client = wsClient(env.orchestrator.wsUrl);
  const updates = collect<{ id: string; connectivity: string }>(client, `subscription { nodeUpdated(nodeId: "site-late") { id connectivity } }`, {}, "nodeUpdated");
  try {
    await env.orchestrator.pubsub.waitForSubscribers(topics.node("site-late"), 1, 10_000);
    await updates.waitFor((items) => items.some((n) => n.connectivity === "ONLINE"), 10_000, "ONLINE");
    await env.agents[0].stop();
    await updates.waitFor((items) => items.at(-1)?.connectivity === "OFFLINE", 10_000, "OFFLINE after missed heartbeats");
    const node = await gqlOk(env.orchestrator.url, `{ node(id: "site-late") { connectivity lastHeartbeatAt } }`);
    assert.is(node.node.connectivity, "OFFLINE");
    assert.ok(node.node.lastHeartbeatAt);
  } finally {
    await updates.dispose();
    await client.dispose();
  }
});

test.run();
