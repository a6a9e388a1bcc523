import { generateKeyPairSync } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import amqp from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { dispatchRoutingKey, EXCHANGES, nodeQueueNames, signNodeMessage, type RunDispatch } from "../../src/messaging/contracts.js";
import { queueDepth } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { addToTestProject, gqlOk } from "../support/graphql.js";
import { finishedWorkflow, getWorkflow, registerNodeScriptTool, SUBMIT, type WorkflowView } from "../support/fixtures.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("signed dispatches");
let env: TestEnv;
let tool: string;

test.before(async () => {
  env = await createTestEnv();
  tool = await registerNodeScriptTool(env.orchestrator.url, "hello", "console.log('hello')");
});

test.after(async () => env?.dispose());

const finished = (id: string): Promise<WorkflowView> => finishedWorkflow(env.orchestrator.url, id);

/** Takes the orchestrator's dispatches from a node's queue (no agent yet) and puts `rewrite` of each back, as another broker user could. */
async function replaceDispatches(nodeId: string, count: number, rewrite: (dispatch: RunDispatch, i: number) => unknown[]): Promise<RunDispatch[]> {
  const queue = nodeQueueNames(nodeId).runs;
  await waitUntil(async () => (await queueDepth(env.vhost.name, queue)) === count, 10_000, `${count} dispatches in the node's queue`);
  const connection = await amqp.connect(env.vhost.url);
  try {
    const channel = await connection.createConfirmChannel();
    const taken: RunDispatch[] = [];
    for (let i = 0; i < count; i++) {
      const message = await channel.get(queue, { noAck: false });
      if (!message) throw new Error("a dispatch is missing from the queue");
      taken.push(JSON.parse(message.content.toString("utf8")));
      channel.ack(message);
    }
    for (const [i, dispatch] of taken.entries()) {
      for (const body of rewrite(dispatch, i)) {
        channel.publish(EXCHANGES.dispatch, dispatchRoutingKey(nodeId, "run"), Buffer.from(JSON.stringify(body)), { persistent: true, contentType: "application/json" });
      }
    }
    await channel.waitForConfirms();
    return taken;
  } finally {
    await connection.close();
  }
}

async function registerNode(nodeId: string): Promise<void> {
  await gqlOk(env.orchestrator.url, `mutation { registerNode(input: { id: "${nodeId}", capacity: 5 }) { node { id } } }`);
  await addToTestProject(env.orchestrator.url, [nodeId]);
}

test("the orchestrator's signed dispatches run, and its public key is in the file nodes pin", async () => {
  assert.match(env.orchestrator.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
  const data0 = await gqlOk(env.orchestrator.url, `{ orchestratorPublicKey }`);
  assert.is(data0.orchestratorPublicKey, env.orchestrator.publicKeyPem, "the query answers the key nodes pin");
  assert.is(readFileSync(`${env.config.signingKeyFile}.pub`, "utf8"), env.orchestrator.publicKeyPem);
  assert.is(statSync(env.config.signingKeyFile).mode & 0o777, 0o600, "the private key is readable by its owner only");
  await registerNode("sig-1");
  await env.startAgent("sig-1");
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["sig-1"] }] } });
  assert.is((await finished(data.submitWorkflow.id)).state, "SUCCEEDED");
});

test("unsigned, foreign-signed and tampered dispatches are refused REJECTED_BY_NODE and nothing runs", async () => {
  await registerNode("sig-2");
  const workflows = [];
  for (let i = 0; i < 3; i++) workflows.push((await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["sig-2"] }] } })).submitWorkflow.id);
  const foreign = generateKeyPairSync("ed25519");
  await replaceDispatches("sig-2", 3, (dispatch, i) => {
    if (i === 0) return [{ ...dispatch, sig: undefined, issuedAt: undefined }];
    if (i === 1) return [signNodeMessage({ ...dispatch, sig: undefined }, foreign.privateKey)];
    return [{ ...dispatch, argv: [...dispatch.argv.slice(0, 2), "require('fs').writeFileSync('pwned', '')"] }];
  });
  await env.startAgent("sig-2");
  const runs = [];
  for (const id of workflows) runs.push((await finished(id)).tasks[0].runs[0]);
  for (const run of runs) {
    assert.is(run.state, "FAILED");
    assert.is(run.failureReason, "REJECTED_BY_NODE");
    assert.not.ok(existsSync(join(env.sandboxRoot, "sig-2", "runs", `${run.id}-1`)), "no sandbox was made");
  }
  const messages = runs.map((r) => r.message ?? "").sort();
  assert.match(messages.join("\n"), /dispatch refused: unsigned/);
  assert.is(messages.filter((m) => /dispatch refused: bad signature/.test(m)).length, 2);
});

test("a replayed dispatch of a finished run does not run again", async () => {
  await registerNode("sig-3");
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["sig-3"] }] } });
  const [original] = await replaceDispatches("sig-3", 1, (dispatch) => [dispatch]);
  const agent = await env.startAgent("sig-3");
  const done = await finished(data.submitWorkflow.id);
  assert.is(done.state, "SUCCEEDED");
  const connection = await amqp.connect(env.vhost.url);
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(EXCHANGES.dispatch, dispatchRoutingKey("sig-3", "run"), Buffer.from(JSON.stringify(original)), { persistent: true, contentType: "application/json" });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
  await waitUntil(() => /duplicate delivery, acknowledged and not run again/.test(agent.output()), 10_000, "the agent to recognise the replay");
  await sleep(500);
  const again = await getWorkflow(env.orchestrator.url, data.submitWorkflow.id);
  assert.is(again.tasks[0].runs[0].state, "SUCCEEDED");
  assert.is(again.tasks[0].runs[0].logLineCount, done.tasks[0].runs[0].logLineCount, "no second execution logged");
});

test.run();
