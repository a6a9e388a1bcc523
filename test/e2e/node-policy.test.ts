import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync } from "node:fs";
import { join } from "node:path";
import amqp from "amqplib";
import { dispatchRoutingKey, EXCHANGES, MAX_ARG_CHARS, nodeQueueNames } from "../../src/messaging/contracts.js";
import { queueDepth, rabbitmqctl } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { addToTestProject, gqlOk } from "../support/graphql.js";
import { finishedWorkflow, getWorkflow, REGISTER_TOOL, registerNodeScriptTool, SUBMIT, type WorkflowView } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("what nodes accept");
let env: TestEnv;

test.before(async () => {
  env = await createTestEnv();
  await gqlOk(env.orchestrator.url, `mutation { a: registerNode(input: { id: "lab-1", labels: { kind: "lab", region: "eu" } }) { node { id } }
    b: registerNode(input: { id: "lab-2", labels: { kind: "lab", region: "us" } }) { node { id } }
    c: registerNode(input: { id: "clinic-1", labels: { kind: "clinic", region: "eu" } }) { node { id } } }`);
  await addToTestProject(env.orchestrator.url, ["lab-1", "lab-2", "clinic-1"]);
  await env.startAgent("lab-1", { env: { FEM_ALLOWED_TOOLS: "hello" } });
  await env.startAgent("lab-2");
  await env.startAgent("clinic-1");
  await registerNodeScriptTool(env.orchestrator.url, "hello", "console.log('hello')");
  await registerNodeScriptTool(env.orchestrator.url, "other", "console.log('other')");
});

test.after(async () => env?.dispose());

const finished = (id: string): Promise<WorkflowView> => finishedWorkflow(env.orchestrator.url, id);

test("a label selector targets every active node carrying the labels", async () => {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "hello@1.0.0", nodeSelector: { kind: "lab" } }] } });
  const workflow = await finished(data.submitWorkflow.id);
  assert.is(workflow.state, "SUCCEEDED");
  assert.equal(workflow.tasks[0].runs.map((r) => r.node.id).sort(), ["lab-1", "lab-2"]);
});

test("an agent refuses a tool its operator did not allow, with REJECTED_BY_NODE", async () => {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "other@1.0.0", nodes: ["lab-1"] }] } });
  const run = (await finished(data.submitWorkflow.id)).tasks[0].runs[0];
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "REJECTED_BY_NODE");
  assert.match(run.message ?? "", /not allowed on node lab-1/);
});

test("an agent without the tool's launcher fails the run with LAUNCH_ERROR instead of running it another way", async () => {
  await gqlOk(env.orchestrator.url, `mutation { registerNode(input: { id: "gpu-1", launchers: ["process", "docker"] }) { node { id } } }`);
  await addToTestProject(env.orchestrator.url, ["gpu-1"]);
  await env.startAgent("gpu-1");
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, { input: { name: "boxed", version: "1", executable: "python3", launcher: "docker", image: "python:3.12-slim" } });
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "boxed@1", nodes: ["gpu-1"] }] } });
  const run = (await finished(data.submitWorkflow.id)).tasks[0].runs[0];
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "LAUNCH_ERROR");
  assert.match(run.message ?? "", /no docker launcher/);
});

test("an agent refuses a dispatch over its caps (an argv item too long) with REJECTED_BY_NODE, and runs nothing", async () => {
  // The API caps parameters well below the agent's caps, so the oversized dispatch is put in the
  // node's queue by hand, in place of the orchestrator's own.
  await gqlOk(env.orchestrator.url, `mutation { registerNode(input: { id: "cap-1" }) { node { id } } }`);
  await addToTestProject(env.orchestrator.url, ["cap-1"]);
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "hello@1.0.0", nodes: ["cap-1"] }] } });
  const queue = nodeQueueNames("cap-1").runs;
  await waitUntil(async () => (await queueDepth(env.vhost.name, queue)) === 1, 10_000, "the run in the node's queue");
  const connection = await amqp.connect(env.vhost.url);
  try {
    const channel = await connection.createConfirmChannel();
    const message = await channel.get(queue, { noAck: false });
    if (!message) throw new Error("no dispatch in the queue");
    const dispatch = JSON.parse(message.content.toString("utf8"));
    channel.ack(message);
    const oversized = { ...dispatch, argv: [...dispatch.argv, "x".repeat(MAX_ARG_CHARS + 1)] };
    channel.publish(EXCHANGES.dispatch, dispatchRoutingKey("cap-1", "run"), Buffer.from(JSON.stringify(oversized)), { persistent: true, contentType: "application/json" });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
  await env.startAgent("cap-1");
  const run = (await finished(data.submitWorkflow.id)).tasks[0].runs[0];
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "REJECTED_BY_NODE");
  assert.match(run.message ?? "", /dispatch refused: argv\.\d+: Too big/i);
  assert.not.ok(existsSync(join(env.sandboxRoot, "cap-1", "runs", `${run.id}-1`)), "no sandbox was made for it");
});

test("a dispatch the broker returns (its node's queue was deleted) is published again, not lost", async () => {
  await gqlOk(env.orchestrator.url, `mutation { registerNode(input: { id: "lab-9" }) { node { id } } }`);
  await addToTestProject(env.orchestrator.url, ["lab-9"]);
  const first = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "hello@1.0.0", nodes: ["lab-9"] }] } });
  const queue = nodeQueueNames("lab-9").runs;
  await waitUntil(async () => (await queueDepth(env.vhost.name, queue)) === 1, 10_000, "the first run in the node's queue");
  await rabbitmqctl("delete_queue", "-p", env.vhost.name, queue);
  const second = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "hello@1.0.0", nodes: ["lab-9"] }] } });
  await waitUntil(async () => (await queueDepth(env.vhost.name, queue)) === 1, 15_000, "the second run to reach the re-declared queue");
  await env.startAgent("lab-9");
  const done = await finished(second.submitWorkflow.id);
  assert.is(done.state, "SUCCEEDED");
  // The first run's message went with the deleted queue: it stays QUEUED until the node's heartbeats
  // show it never arrived (FEM_UNREPORTED_RUN_GRACE_MS, 30 s here); test/scheduling/unheld-runs.test.ts covers that.
  assert.is((await getWorkflow(env.orchestrator.url, first.submitWorkflow.id)).tasks[0].runs[0].state, "QUEUED");
});

test.run();
