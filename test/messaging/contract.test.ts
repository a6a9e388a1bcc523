/**
 * Everything the orchestrator sends across a process boundary is what the wire contract says:
 * every outbox row a real workflow produces (dispatches with upstream results, cancels, the stops
 * of a disabled node) parses with the node-message schema and carries the contract's routing, and
 * every live message between instances parses with the live-message schema and names its origin in
 * a header, by which an instance drops its own (unparsed) and takes the others'.
 */
import "reflect-metadata";
import amqp from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  dispatchRoutingKey,
  EXCHANGES,
  liveMessageSchema,
  nodeMessageSchema,
  nodeOfDispatchRoutingKey,
  parseMessage,
  type LiveMessage,
} from "../../src/messaging/contracts.js";
import { createBroker } from "../../src/messaging/broker.js";
import { createLogger } from "../../src/logger.js";
import { createLiveEvents } from "../../src/live/live-events.js";
import { createPubSub } from "../../src/live/pubsub.js";
import { topics } from "../../src/live/topics.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT, TERMINAL } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("the wire contract");
let env: TestEnv;
let connection: amqp.ChannelModel;
const live: unknown[] = [];
const liveOrigins: unknown[] = [];

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a", "site-b"]);
  await env.startAgent("site-a");
  connection = await amqp.connect(env.vhost.url);
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue("", { exclusive: true });
  await channel.bindQueue(queue, EXCHANGES.live, "");
  await channel.consume(
    queue,
    (message) => {
      if (!message) return;
      live.push(JSON.parse(message.content.toString("utf8")));
      liveOrigins.push(message.properties.headers?.["fem-origin"]);
    },
    { noAck: true },
  );
});

test.after(async () => {
  await connection?.close().catch(() => undefined);
  await env?.dispose();
});

async function waitForWorkflow(id: string, state: string): Promise<void> {
  await waitUntil(async () => (await getWorkflow(env.orchestrator.url, id)).state === state || undefined, 30_000, `workflow ${id} to be ${state}`);
}

test("every outbox payload of a real workflow parses with the contract and carries its routing", async () => {
  const url = env.orchestrator.url;
  const producer = await registerNodeScriptTool(url, "producer", "require('fs').writeFileSync('result.json', JSON.stringify({ n: 7 })); console.log('made 7')", { resultFile: "result.json" });
  const consumer = await registerNodeScriptTool(url, "consumer", "console.log(require('fs').readFileSync('fem-inputs.json', 'utf8'))");
  const sleeper = await registerNodeScriptTool(url, "sleeper", "console.log('sleeping'); setTimeout(() => {}, 60000)");

  const graph = await gqlOk(url, SUBMIT, {
    input: { tasks: [{ key: "make", tool: producer, nodes: ["site-a"] }, { key: "use", tool: consumer, nodes: ["site-a"], dependsOn: ["make"] }] },
  });
  await waitForWorkflow(graph.submitWorkflow.id, "SUCCEEDED");

  const long = await gqlOk(url, SUBMIT, { input: { tasks: [{ key: "sleep", tool: sleeper, nodes: ["site-a"] }] } });
  await waitUntil(async () => (await getWorkflow(url, long.submitWorkflow.id)).state === "RUNNING" || undefined, 30_000, "the sleeper to run");
  await gqlOk(url, `mutation($id: ID!) { cancelWorkflow(id: $id) { id } }`, { id: long.submitWorkflow.id });
  await waitForWorkflow(long.submitWorkflow.id, "CANCELLED");

  // site-b has no agent: its run waits in its queue until the node is disabled, which stops it.
  const stranded = await gqlOk(url, SUBMIT, { input: { tasks: [{ key: "away", tool: sleeper, nodes: ["site-b"] }] } });
  await waitUntil(async () => (await env.sql(`select 1 from run where node_id = 'site-b' and dispatched_at is not null`)).length > 0 || undefined, 10_000, "the site-b dispatch");
  await gqlOk(url, `mutation { setNodeAdminState(id: "site-b", state: DISABLED) { id } }`);
  await waitUntil(async () => TERMINAL.includes((await getWorkflow(url, stranded.submitWorkflow.id)).state) || undefined, 10_000, "the stranded workflow to end");

  const rows = await env.sql<{ exchange: string; routing_key: string; payload: unknown }>(`select exchange, routing_key, payload from outbox order by id`);
  const problems: string[] = [];
  const types = new Map<string, number>();
  let withUpstream = 0;
  for (const row of rows) {
    const parsed = parseMessage(nodeMessageSchema, row.payload);
    if (!parsed.ok) {
      problems.push(`${row.routing_key}: ${parsed.error}`);
      continue;
    }
    const message = parsed.value;
    types.set(message.type, (types.get(message.type) ?? 0) + 1);
    const expected = dispatchRoutingKey(message.nodeId, message.type === "run.dispatch" ? "run" : "control");
    if (row.exchange !== EXCHANGES.dispatch) problems.push(`${message.type} published to ${row.exchange}`);
    if (row.routing_key !== expected) problems.push(`${message.type} routed ${row.routing_key}, contract says ${expected}`);
    if (nodeOfDispatchRoutingKey(row.routing_key) !== message.nodeId) problems.push(`${row.routing_key} does not name node ${message.nodeId}`);
    if (message.type === "run.dispatch" && message.upstream.length > 0) withUpstream += 1;
  }
  assert.equal(problems, [], problems.join("\n"));
  assert.ok((types.get("run.dispatch") ?? 0) >= 4, `dispatches: ${types.get("run.dispatch")}`);
  assert.ok((types.get("run.cancel") ?? 0) >= 2, `cancels: ${types.get("run.cancel")} (a user cancel and a disabled node)`);
  assert.is(withUpstream, 1, "the dependent run carries its upstream result");
});

test("every live message between instances parses with the contract", async () => {
  await waitUntil(() => live.length > 0 || undefined, 5_000, "live messages");
  const problems: string[] = [];
  const seen = { nodes: 0, runs: 0, tasks: 0, workflows: 0, logs: 0 };
  for (const content of live) {
    const parsed = parseMessage(liveMessageSchema, content);
    if (!parsed.ok) {
      problems.push(parsed.error);
      continue;
    }
    for (const key of Object.keys(seen) as (keyof typeof seen)[]) seen[key] += parsed.value[key].length;
  }
  assert.equal(problems, [], problems.join("\n"));
  for (const [key, count] of Object.entries(seen)) assert.ok(count > 0, `no live message carried ${key}`);
  assert.equal(
    liveOrigins,
    live.map((content) => (content as { origin: string }).origin),
    "each live message names its instance in its fem-origin header",
  );
});

test("an instance takes other instances' live messages, parsed, and not its own", async () => {
  const logger = createLogger("error");
  const options = { amqpUrl: env.vhost.url, tls: {}, ingestPrefetch: 10 };
  const a = await createBroker({ ...options, instanceId: "contract-a" }, logger);
  const b = await createBroker({ ...options, instanceId: "contract-b" }, logger);
  const channel = await connection.createChannel();
  try {
    const got = { a: [] as unknown[], b: [] as unknown[] };
    // The test environment's own orchestrator publishes too: only this test's messages count.
    const mine = (payload: unknown) => typeof (payload as { n?: unknown }).n === "number";
    await a.consumeLive((payload) => mine(payload) && got.a.push(payload));
    await b.consumeLive((payload) => mine(payload) && got.b.push(payload));
    a.publishLive({ origin: "contract-a", n: 1 });
    b.publishLive({ origin: "contract-b", n: 2 });
    // An instance of a version without the header: its messages are still taken.
    channel.publish(EXCHANGES.live, "", Buffer.from(JSON.stringify({ origin: "contract-old", n: 3 })), { contentType: "application/json" });
    await waitUntil(() => (got.a.length >= 2 && got.b.length >= 2) || undefined, 5_000, "live messages on both instances");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const sorted = (list: unknown[]) => [...list].sort((x, y) => (x as { n: number }).n - (y as { n: number }).n);
    assert.equal(sorted(got.a), [{ origin: "contract-b", n: 2 }, { origin: "contract-old", n: 3 }]);
    assert.equal(sorted(got.b), [{ origin: "contract-a", n: 1 }, { origin: "contract-old", n: 3 }]);
  } finally {
    await channel.close().catch(() => undefined);
    await a.stop();
    await b.stop();
  }
});

test("a live message that breaks the contract is dropped; a valid one from another instance is delivered", async () => {
  const pubsub = createPubSub(100);
  const events = createLiveEvents("instance-a", pubsub, null);
  const delivered: unknown[] = [];
  const stop = pubsub.listen(topics.workflow("0b0e3c4c-0000-4000-8000-000000000001"), (payload) => delivered.push(payload));
  const valid: LiveMessage = {
    v: 1,
    origin: "instance-b",
    at: new Date().toISOString(),
    nodes: [],
    runs: [],
    tasks: [],
    workflows: [{ id: "0b0e3c4c-0000-4000-8000-000000000001", state: "RUNNING" }],
    logs: [],
    outputs: [],
  };
  events.receive({ ...valid, workflows: [{ id: "0b0e3c4c-0000-4000-8000-000000000001", state: "EXPLODED" }] });
  events.receive({ ...valid, v: 2 });
  events.receive("not even an object");
  assert.is(delivered.length, 0, "invalid messages deliver nothing");
  events.receive({ ...valid, origin: "instance-a" });
  assert.is(delivered.length, 0, "an instance ignores its own messages");
  events.receive(valid);
  assert.is(delivered.length, 1);
  // An instance that predates `outputs` is still heard.
  const { outputs: _absent, ...older } = valid;
  events.receive(older);
  assert.is(delivered.length, 2);
  stop();
});

test("a run's outputs changed on another instance reach this one's runOutputsUpdated topic", () => {
  const pubsub = createPubSub(100);
  const events = createLiveEvents("instance-a", pubsub, null);
  const runId = "0b0e3c4c-0000-4000-8000-000000000002";
  const delivered: unknown[] = [];
  const stop = pubsub.listen(topics.runOutputs(runId), (payload) => delivered.push(payload));
  events.receive({ v: 1, origin: "instance-b", at: new Date().toISOString(), nodes: [], runs: [], tasks: [], workflows: [], logs: [], outputs: [runId] });
  events.receive({ v: 1, origin: "instance-b", at: new Date().toISOString(), nodes: [], runs: [], tasks: [], workflows: [], logs: [], outputs: ["not-a-uuid"] });
  assert.equal(delivered, [{ runId }]);
  stop();
});

test("a workflow submitted on another instance is announced to this one's workflowSubmitted subscribers; a state change is not", () => {
  const pubsub = createPubSub(100);
  const events = createLiveEvents("instance-a", pubsub, null);
  const announced: unknown[] = [];
  const stop = pubsub.listen(topics.submittedWorkflows, (payload) => announced.push(payload));
  const id = "0b0e3c4c-0000-4000-8000-000000000002";
  const projectId = "0b0e3c4c-0000-4000-8000-0000000000aa";
  const message = { v: 1, origin: "instance-b", at: new Date().toISOString(), nodes: [], runs: [], tasks: [], logs: [] };
  events.receive({ ...message, workflows: [{ id, state: "RUNNING" }] });
  events.receive({ ...message, workflows: [{ id, state: "QUEUED", submitted: { projectId: "not-a-uuid" } }] });
  assert.equal(announced, [], "a state change or an invalid project announces nothing");
  events.receive({ ...message, workflows: [{ id, state: "QUEUED", submitted: { projectId } }] });
  assert.equal(announced, [{ id, projectId }]);
  stop();
});

test.run();
