/**
 * Removing a node, against the real broker: refused while the node is ACTIVE or holds runs that
 * have not finished; afterwards its queues and broker user are gone, its credential no longer
 * connects, its history stays readable, and registering the same id again works.
 */
import amqp from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { nodeBrokerUser, nodeQueueNames } from "../../src/messaging/contracts.js";
import { management } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { expectError, gql, gqlOk } from "../support/graphql.js";
import { finishedWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("removing a node");
let env: TestEnv;
let tool: string;

const REMOVE = `mutation($id: ID!) { removeNode(id: $id) { id adminState removedAt } }`;
const setState = (id: string, state: string) => gqlOk(env.orchestrator.url, `mutation($id: ID!, $s: NodeAdminState!) { setNodeAdminState(id: $id, state: $s) { id } }`, { id, s: state });

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["keep", "gone"]);
  tool = await registerNodeScriptTool(env.orchestrator.url, "hello", "console.log('hello')");
});

test.after(async () => env?.dispose());

async function queuesOf(nodeId: string): Promise<string[]> {
  const names = Object.values(nodeQueueNames(nodeId));
  const queues = (await management("GET", `/queues/${encodeURIComponent(env.vhost.name)}?columns=name`)) as { name: string }[];
  return queues.map((q) => q.name).filter((n) => names.includes(n));
}

async function userExists(nodeId: string): Promise<boolean> {
  const users = (await management("GET", `/users?columns=name`)) as { name: string }[];
  return users.some((u) => u.name === nodeBrokerUser(env.vhost.name, nodeId));
}

test("an ACTIVE node is refused with CONFLICT and a message saying to disable it first", async () => {
  expectError(await gql(env.orchestrator.url, REMOVE, { id: "gone" }), "CONFLICT", /node gone is ACTIVE: set it DISABLED \(setNodeAdminState\) so it takes no new work, wait until its runs have ended, then remove it/);
});

test("a DRAINING node with a run not finished is refused, naming the runs by state", async () => {
  // No agent runs: the run stays QUEUED, and DRAINING (unlike DISABLED) leaves it so.
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { project: "test", tasks: [{ key: "t", tool, nodes: ["gone"] }] } });
  await setState("gone", "DRAINING");
  expectError(await gql(env.orchestrator.url, REMOVE, { id: "gone" }), "CONFLICT", /node gone has 1 run not finished \(1 QUEUED\): wait for them to end or cancel them/);
  const [node] = await env.sql<{ removed_at: Date | null }>(`select removed_at from node where id = 'gone'`);
  assert.is(node.removed_at, null);
  assert.equal((await queuesOf("gone")).sort(), Object.values(nodeQueueNames("gone")).sort(), "refusal kept the queues");
  assert.ok(await userExists("gone"), "refusal kept the broker user");
  await gqlOk(env.orchestrator.url, `mutation($id: ID!) { cancelWorkflow(id: $id) { id } }`, { id: data.submitWorkflow.id });
});

test("removal deletes the queues and broker user, the old credential cannot connect, the node leaves nodes but its runs stay", async () => {
  const url = await env.nodeAmqpUrl("gone");
  const before = await amqp.connect(url);
  await before.close();
  const removed = await gqlOk(env.orchestrator.url, REMOVE, { id: "gone" });
  assert.is(removed.removeNode.id, "gone");
  assert.ok(removed.removeNode.removedAt);
  assert.equal(await queuesOf("gone"), []);
  assert.not.ok(await userExists("gone"));
  const refused = await amqp.connect(url).then(
    async (c) => {
      await c.close();
      return "connected";
    },
    (err: Error) => err.message,
  );
  assert.match(refused, /ACCESS_REFUSED|403/);
  const listed = await gqlOk(env.orchestrator.url, `{ nodes { nodes { id } } all: nodes(filter: { includeRemoved: true }) { nodes { id removedAt } } }`);
  assert.equal(listed.nodes.nodes.map((n: { id: string }) => n.id), ["keep"]);
  assert.equal(listed.all.nodes.map((n: { id: string }) => n.id), ["gone", "keep"]);
  const [runs] = await env.sql<{ n: string }>(`select count(*) as n from run where node_id = 'gone'`);
  assert.is(Number(runs.n), 1, "the node's runs are kept");
  expectError(await gql(env.orchestrator.url, REMOVE, { id: "gone" }), "NOT_FOUND", /Node "gone" does not exist/);
  expectError(await gql(env.orchestrator.url, `mutation { setNodeAdminState(id: "gone", state: ACTIVE) { id } }`), "CONFLICT", /node gone was removed: register it again/);
  expectError(await gql(env.orchestrator.url, SUBMIT, { input: { project: "test", tasks: [{ key: "t", tool, nodes: ["gone"] }] } }), "BAD_USER_INPUT", /unknown node "gone"/);
  const [audit] = await env.sql<{ action: string; outcome: string }>(`select action, outcome from audit_event where action = 'removeNode' and outcome = 'OK'`);
  assert.ok(audit, "the removal is in the audit log");
});

test("registering a removed node's id again gives it new queues and a new credential that works", async () => {
  const data = await gqlOk(env.orchestrator.url, `mutation { registerNode(input: { id: "gone", capacity: 3 }) { node { id capacity adminState removedAt } credential } }`);
  assert.equal(data.registerNode.node, { id: "gone", capacity: 3, adminState: "ACTIVE", removedAt: null });
  await gqlOk(env.orchestrator.url, `mutation { addProjectNode(project: "test", nodeId: "gone") { id } }`);
  await waitUntil(async () => (await queuesOf("gone")).length === Object.keys(nodeQueueNames("gone")).length, 10_000, "the node's queues declared again");
  const agent = await env.startAgent("gone", { credential: data.registerNode.credential });
  try {
    const submitted = await gqlOk(env.orchestrator.url, SUBMIT, { input: { project: "test", tasks: [{ key: "t", tool, nodes: ["gone"] }] } });
    const done = await finishedWorkflow(env.orchestrator.url, submitted.submitWorkflow.id);
    assert.is(done.state, "SUCCEEDED");
  } finally {
    await agent.stop();
  }
});

test.run();
