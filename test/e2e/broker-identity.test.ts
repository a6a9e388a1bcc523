/**
 * Each node has its own broker user with least privilege, attacked for real: with node A's
 * credential nothing of B's is reachable, nothing can be declared or deleted, events in B's name
 * are refused by RabbitMQ or dead-lettered `forged` by the orchestrator, and DISABLED and rotated
 * credentials stop working at once.
 */
import amqp, { type ChannelModel, type ConfirmChannel } from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DEAD_LETTER_HEADERS, dispatchRoutingKey, EXCHANGES, nodeBrokerUser, nodeEventRoutingKey, nodeQueueNames } from "../../src/messaging/contracts.js";
import { createOrchestrator } from "../../src/app.js";
import { createLogger } from "../../src/logger.js";
import { ServiceUnreachableError } from "../../src/unreachable.js";
import { createEventPublisher } from "../support/amqp.js";
import { management } from "../support/broker.js";
import { configWith, createTestEnv, type TestEnv } from "../support/env.js";
import { expectError, gql, gqlOk } from "../support/graphql.js";
import { finishedWorkflow, getWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("a broker identity per node");
let env: TestEnv;
let tool: string;
let aUrl: string;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a", "site-b"]);
  tool = await registerNodeScriptTool(env.orchestrator.url, "hello", "console.log('hello')");
  aUrl = await env.nodeAmqpUrl("site-a");
});

test.after(async () => env?.dispose());

/** Resolves with the broker's refusal (its text), or rejects when the operation was allowed. */
async function refused(connection: ChannelModel, operation: (channel: ConfirmChannel) => Promise<unknown>): Promise<string> {
  const channel = await connection.createConfirmChannel();
  let closedWith = "";
  channel.on("error", (err: Error) => (closedWith = err.message));
  try {
    await operation(channel);
  } catch (err) {
    return (err as Error).message || closedWith;
  }
  await channel.close().catch(() => undefined);
  throw new Error("the broker allowed it");
}

function publish(channel: ConfirmChannel, routingKey: string, body: unknown, userId?: string): Promise<void> {
  return new Promise((resolve, reject) =>
    channel.publish(EXCHANGES.nodeEvents, routingKey, Buffer.from(JSON.stringify(body)), { persistent: true, userId }, (err) => (err ? reject(err) : resolve())),
  );
}

async function deadLetters(): Promise<{ reason: string | null; routingKey: string; problem: string | null }[]> {
  const rows = await env.sql<{ reason: string | null; routing_key: string; headers: Record<string, unknown> }>(`select reason, routing_key, headers from dead_letter order by received_at`);
  return rows.map((r) => ({ reason: r.reason, routingKey: r.routing_key, problem: (r.headers[DEAD_LETTER_HEADERS.problem] as string | undefined) ?? null }));
}

/** A run of `tool` on `nodeId`, which stays QUEUED while no agent runs there. */
async function queuedRunOn(nodeId: string): Promise<{ workflowId: string; runId: string }> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { project: "test", tasks: [{ key: "t", tool, nodes: [nodeId] }] } });
  return { workflowId: data.submitWorkflow.id, runId: data.submitWorkflow.tasks[0].runs[0].id };
}

const at = () => new Date().toISOString();

test("with node A's credential the broker refuses B's queue, binding to fem.dispatch, declaring, deleting and B's routing keys", async () => {
  const connection = await amqp.connect(aUrl);
  try {
    const b = nodeQueueNames("site-b");
    const a = nodeQueueNames("site-a");
    const checks: [string, (c: ConfirmChannel) => Promise<unknown>][] = [
      ["consume B's runs queue", (c) => c.consume(b.runs, () => undefined)],
      ["read one of B's dispatches", (c) => c.get(b.runs)],
      ["bind its own queue to fem.dispatch with B's key", (c) => c.bindQueue(a.runs, EXCHANGES.dispatch, dispatchRoutingKey("site-b", "run"))],
      ["declare a queue of its own", (c) => c.assertQueue(`${a.runs}.spy`)],
      ["declare an exchange", (c) => c.assertExchange("fem.spy", "fanout")],
      ["delete fem.dispatch", (c) => c.deleteExchange(EXCHANGES.dispatch)],
      ["delete B's queue", (c) => c.deleteQueue(b.runs)],
      ["publish to fem.dispatch", (c) => new Promise((res, rej) => c.publish(EXCHANGES.dispatch, dispatchRoutingKey("site-b", "run"), Buffer.from("{}"), {}, (e) => (e ? rej(e) : res(null))))],
      ["publish an event with B's routing key", (c) => publish(c, nodeEventRoutingKey("site-b", "node.heartbeat"), {}, nodeBrokerUser(env.vhost.name, "site-a"))],
      ["publish an event with B's user_id", (c) => publish(c, nodeEventRoutingKey("site-a", "node.heartbeat"), {}, nodeBrokerUser(env.vhost.name, "site-b"))],
    ];
    for (const [what, operation] of checks) {
      const reason = await refused(connection, operation).catch((err: Error) => assert.unreachable(`${what}: ${err.message}`));
      assert.match(String(reason), /ACCESS_REFUSED|PRECONDITION_FAILED|403|406|closed/, what);
    }
    // What it may do: check and consume its own queue.
    const own = await connection.createChannel();
    assert.ok(await own.checkQueue(a.runs));
    await own.close();
  } finally {
    await connection.close().catch(() => undefined);
  }
});

test("an event about B's run under A's own name is dead-lettered forged and changes nothing", async () => {
  const { workflowId, runId } = await queuedRunOn("site-b");
  const events = await createEventPublisher(aUrl);
  try {
    await events.publish({ type: "run.state", v: 1, nodeId: "site-a", runId, attempt: 1, state: "SUCCEEDED", at: at(), exitCode: 0, result: { mean: 1e9 } });
    await events.publish({ type: "run.logs", v: 1, nodeId: "site-a", runId, attempt: 1, lines: [{ seq: 1, stream: "STDOUT", at: at(), text: "forged" }] });
    // A heartbeat naming B in its body, under A's routing key (the only key A may use).
    await events.publish({ type: "node.heartbeat", v: 1, nodeId: "site-b", at: at(), capacity: 2, launchers: ["process"], health: { cpus: 1, loadAvg1: 0, memoryTotalBytes: 1, memoryFreeBytes: 1, diskFreeBytes: null, gpus: 0, agentVersion: "x" }, activeRuns: [] }, nodeEventRoutingKey("site-a", "node.heartbeat"));
    // A's heartbeat claiming B's run as its own.
    await events.publish({ type: "node.heartbeat", v: 1, nodeId: "site-a", at: at(), capacity: 2, launchers: ["process"], health: { cpus: 1, loadAvg1: 0, memoryTotalBytes: 1, memoryFreeBytes: 1, diskFreeBytes: null, gpus: 0, agentVersion: "x" }, activeRuns: [{ runId, attempt: 1 }] });
  } finally {
    await events.close();
  }
  const letters = await waitUntil(async () => {
    const rows = (await deadLetters()).filter((l) => l.reason === "forged");
    return rows.length >= 4 ? rows : undefined;
  }, 10_000, "four forged dead letters");
  assert.ok(letters.some((l) => /not node site-a's/.test(l.problem ?? "")), JSON.stringify(letters));
  assert.ok(letters.some((l) => /does not match/.test(l.problem ?? "")), JSON.stringify(letters));
  const workflow = await getWorkflow(env.orchestrator.url, workflowId);
  const run = workflow.tasks[0].runs[0];
  assert.is(run.state, "QUEUED");
  assert.is(run.logLineCount, 0);
  assert.is(run.result, null);
  const [b] = await env.sql<{ connectivity: string; last_heartbeat_at: Date | null }>(`select connectivity, last_heartbeat_at from node where id = 'site-b'`);
  assert.is(b.last_heartbeat_at, null, "a forged heartbeat kept B alive");
  const [a] = await env.sql<{ last_heartbeat_at: Date | null }>(`select last_heartbeat_at from node where id = 'site-a'`);
  assert.is(a.last_heartbeat_at, null, "a heartbeat claiming B's run was stored");
});

test("an event published by another broker user in A's name (no user_id) is dead-lettered forged", async () => {
  const { runId } = await queuedRunOn("site-b");
  // The suite's administrator user may publish anywhere; it still is not site-a.
  const connection = await amqp.connect(env.vhost.url);
  const before = (await deadLetters()).length;
  try {
    const channel = await connection.createConfirmChannel();
    await publish(channel, nodeEventRoutingKey("site-a", "run.state"), { type: "run.state", v: 1, nodeId: "site-a", runId, attempt: 1, state: "RUNNING", at: at() });
  } finally {
    await connection.close();
  }
  const letter = await waitUntil(async () => (await deadLetters()).slice(before).find((l) => l.reason === "forged"), 10_000, "a forged dead letter");
  assert.match(letter.problem ?? "", /not by node site-a's own fem-node\./);
});

test("a DISABLED node's agent is cut off and cannot reconnect; enabled again, it works; a rotated credential is refused at once", async () => {
  const agent = await env.startAgent("site-a");
  const ok = async () => {
    const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { project: "test", tasks: [{ key: "t", tool, nodes: ["site-a"] }] } });
    const done = await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id);
    assert.is(done.state, "SUCCEEDED");
  };
  await ok();
  const connections = async () => (await management("GET", `/connections/username/${encodeURIComponent(nodeBrokerUser(env.vhost.name, "site-a"))}`)) as unknown[];
  assert.ok((await connections()).length > 0, "the agent is connected");

  await gqlOk(env.orchestrator.url, `mutation { setNodeAdminState(id: "site-a", state: DISABLED) { adminState } }`);
  await waitUntil(() => /lost the connection to RabbitMQ/.test(agent.output()), 10_000, "the agent to be disconnected");
  const reconnect = await amqp.connect(aUrl).then(
    async (c) => {
      await c.close();
      return "connected";
    },
    (err: Error) => err.message,
  );
  assert.match(reconnect, /ConnectionClose|NOT_ALLOWED|ACCESS_REFUSED|403|530/);
  await sleep(1_500);
  assert.is((await connections()).length, 0, "the disabled node reconnected");

  await gqlOk(env.orchestrator.url, `mutation { setNodeAdminState(id: "site-a", state: ACTIVE) { adminState } }`);
  await waitUntil(async () => (await connections()).length > 0, 20_000, "the agent to reconnect");
  await ok();

  const rotated = await gqlOk(env.orchestrator.url, `mutation { rotateNodeCredential(id: "site-a") { credential } }`);
  assert.match(rotated.rotateNodeCredential.credential, /^fem_node_/);
  const old = await amqp.connect(aUrl).then(
    async (c) => {
      await c.close();
      return "connected";
    },
    (err: Error) => err.message,
  );
  assert.match(old, /ACCESS_REFUSED|403/);
  await waitUntil(async () => (await connections()).length === 0, 10_000, "the agent's old connection to be closed");
  await agent.stop();
  // The new credential works.
  const fresh = await env.startAgent("site-a", { credential: rotated.rotateNodeCredential.credential });
  await ok();
  await fresh.stop();
});

test("registerNode answers UNAVAILABLE and leaves no node behind when the broker will not make the node's user", async () => {
  // A second orchestrator on the same database, whose broker user stops being an administrator.
  const admin = `fem-test-admin.${env.vhost.name}`;
  const enc = encodeURIComponent;
  await management("PUT", `/users/${enc(admin)}`, { password: "pw", tags: "administrator" });
  await management("PUT", `/permissions/${enc(env.vhost.name)}/${enc(admin)}`, { configure: ".*", write: ".*", read: ".*" });
  const amqpUrl = new URL(env.vhost.url);
  amqpUrl.username = enc(admin);
  amqpUrl.password = "pw";
  const second = await createOrchestrator(configWith({ ...env.config, amqpUrl: amqpUrl.toString(), port: 0, instanceId: "second" }), createLogger("silent"));
  try {
    await management("PUT", `/users/${enc(admin)}`, { password: "pw", tags: "" });
    const result = await gql(second.url, `mutation { registerNode(input: { id: "site-d" }) { node { id } credential } }`);
    expectError(result, "UNAVAILABLE", /management API .*administrator/);
    assert.equal(await env.sql(`select id from node where id = 'site-d'`), []);
  } finally {
    await second.stop();
    await management("DELETE", `/users/${enc(admin)}`).catch(() => undefined);
  }
  // The first orchestrator registers it.
  const ok = await gqlOk(env.orchestrator.url, `mutation { registerNode(input: { id: "site-d" }) { node { id } credential } }`);
  assert.match(ok.registerNode.credential, /^fem_node_/);
  expectError(await gql(env.orchestrator.url, `mutation { rotateNodeCredential(id: "no-such") { credential } }`), "NOT_FOUND", /no-such/);
});

test("an orchestrator whose broker has no management API says so in one line and does not start", async () => {
  const err = await createOrchestrator(configWith({ ...env.config, port: 0, instanceId: "third", brokerManagementUrl: "http://127.0.0.1:15673" }), createLogger("silent")).then(
    async (o) => {
      await o.stop();
      return null;
    },
    (e: Error) => e,
  );
  assert.instance(err, ServiceUnreachableError);
  assert.match(err!.message, /^RabbitMQ's management API at http:\/\/127\.0\.0\.1:15673\/api is not reachable \(ECONNREFUSED\)\. Enable it: rabbitmq-plugins enable rabbitmq_management/, err?.message);
  assert.not.match(err!.message, /\n/);
});

test.run();
