import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import amqp from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dispatchRoutingKey, EXCHANGES, nodeQueueNames, signNodeMessage, type RunDispatch } from "../../src/messaging/contracts.js";
import { toolDigest } from "../../src/shared/index.js";
import { queueDepth } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { finishedWorkflow, REGISTER_TOOL, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { assertRefused, registerNode, runOn } from "../support/node-runs.js";
import { waitUntil } from "../support/wait.js";

const test = suite("tools pinned by digest on the node");
let env: TestEnv;
let helloDigest: string;

test.before(async () => {
  env = await createTestEnv();
  await registerNodeScriptTool(env.orchestrator.url, "hello", "console.log('hello')");
  await registerNodeScriptTool(env.orchestrator.url, "other", "console.log('other')");
  helloDigest = await digestOf("hello@1.0.0");
});

test.after(async () => env?.dispose());

async function digestOf(ref: string): Promise<string> {
  return (await gqlOk(env.orchestrator.url, `query($id: ID!) { tool(id: $id) { digest } }`, { id: ref })).tool.digest;
}

/** Registers `nodeId` and starts its agent with `policy` as its FEM_POLICY_FILE. */
async function startPinnedAgent(nodeId: string, policy: unknown): Promise<void> {
  await registerNode(env, nodeId);
  const file = join(env.sandboxRoot, `${nodeId}-policy.json`);
  await writeFile(file, JSON.stringify(policy));
  await env.startAgent(nodeId, { env: { FEM_POLICY_FILE: file } });
}

test("a tool's digest is the one its definition gives, on the API and in every dispatch", async () => {
  assert.match(helloDigest, /^sha256:[0-9a-f]{64}$/);
  const [row] = await env.sql<{ digest: string }>(`select digest from tool where name = 'hello'`);
  assert.is(row.digest, helloDigest, "stored at registration");
  await env.sql(`update tool set digest = null where name = 'other'`);
  const [other] = await env.sql<{ executable: string; args: never; env: Record<string, string> }>(`select executable, args, env from tool where name = 'other'`);
  assert.is(await digestOf("other@1.0.0"), toolDigest({ ...other, launcher: "process" }), "a tool registered before digests gets one computed from its definition");
});

test("a pinned tool runs; the same name registered again with another executable, and an unpinned digest, are refused", async () => {
  await startPinnedAgent("pin-1", { tools: [{ name: "hello", digests: [helloDigest] }, { name: "other", version: "9", digest: helloDigest }] });
  assert.is((await runOn(env, "pin-1", "hello@1.0.0")).state, "SUCCEEDED");
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
    input: { name: "hello", version: "2.0.0", executable: "/bin/sh", args: [{ id: "script", type: "STRING", position: 0, prefix: "-c", default: "echo pwned > pwned" }] },
  });
  const helloTwo = await digestOf("hello@2.0.0");
  assertRefused(env, await runOn(env, "pin-1", "hello@2.0.0"), "pin-1", new RegExp(`tool hello@2\\.0\\.0 with digest ${helloTwo} is not pinned`));
  assertRefused(env, await runOn(env, "pin-1", "other@1.0.0"), "pin-1", /tool other@1\.0\.0 with digest sha256:[0-9a-f]{64} is not pinned/);
});

test("an empty policy refuses every tool", async () => {
  await startPinnedAgent("pin-2", { tools: [] });
  assertRefused(env, await runOn(env, "pin-2", "hello@1.0.0"), "pin-2", /not pinned on this node/);
});

test("a policy that says allow: any runs any tool", async () => {
  await startPinnedAgent("pin-3", { allow: "any" });
  assert.is((await runOn(env, "pin-3", "other@1.0.0")).state, "SUCCEEDED");
});

test("a definition changed after registration is refused, even signed by the orchestrator's key: under its old digest, and under a digest of its own", async () => {
  const nodeId = "pin-4";
  await registerNode(env, nodeId);
  const workflows: string[] = [];
  for (let i = 0; i < 2; i++) workflows.push((await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "hello@1.0.0", nodes: [nodeId] }] } })).submitWorkflow.id);
  // A stand-in for an orchestrator that was subverted: the dispatch is rewritten and signed with its own key.
  const key = createPrivateKey(readFileSync(env.config.signingKeyFile));
  const queue = nodeQueueNames(nodeId).runs;
  await waitUntil(async () => (await queueDepth(env.vhost.name, queue)) === 2, 10_000, "two dispatches in the node's queue");
  const connection = await amqp.connect(env.vhost.url);
  try {
    const channel = await connection.createConfirmChannel();
    for (let i = 0; i < 2; i++) {
      const message = await channel.get(queue, { noAck: false });
      if (!message) throw new Error("a dispatch is missing from the queue");
      const dispatch = JSON.parse(message.content.toString("utf8")) as RunDispatch;
      channel.ack(message);
      const definition = { ...dispatch.tool.definition!, executable: "/bin/sh" };
      const digest = i === 0 ? dispatch.tool.digest : toolDigest(definition);
      const tampered = { ...dispatch, sig: undefined, tool: { ...dispatch.tool, digest, definition }, argv: ["/bin/sh", "-c", "echo pwned > pwned"] };
      channel.publish(EXCHANGES.dispatch, dispatchRoutingKey(nodeId, "run"), Buffer.from(JSON.stringify(signNodeMessage(tampered, key))), { persistent: true });
    }
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
  const file = join(env.sandboxRoot, `${nodeId}-policy.json`);
  await writeFile(file, JSON.stringify({ tools: [{ name: "hello", version: "1.0.0", digest: helloDigest }] }));
  await env.startAgent(nodeId, { env: { FEM_POLICY_FILE: file } });
  const [underOld, underOwn] = await Promise.all(workflows.map(async (id) => (await finishedWorkflow(env.orchestrator.url, id)).tasks[0].runs[0]));
  assertRefused(env, underOld, nodeId, new RegExp(`tool definition does not match its digest ${helloDigest}`));
  assertRefused(env, underOwn, nodeId, /tool hello@1\.0\.0 with digest sha256:[0-9a-f]{64} is not pinned/);
});

test("an agent whose policy file is invalid does not start, and lists every problem", async () => {
  const file = join(env.sandboxRoot, "bad-policy.json");
  await writeFile(file, JSON.stringify({ allow: "everything", tools: [{ name: "hello" }, { name: "x", digest: "md5:1" }] }));
  const failure = await env.startAgent("pin-5", { env: { FEM_POLICY_FILE: file } }).then(
    () => null,
    (err: unknown) => String(err),
  );
  assert.ok(failure, "the agent did not start");
  assert.match(failure ?? "", /FEM_POLICY_FILE .* is invalid: allow: .*tools\.0: names no digest.*tools\.1\.digest:/s);
});

test.run();
