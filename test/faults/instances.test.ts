import { suite } from "uvu";
import * as assert from "uvu/assert";
import { nodeQueueNames } from "../../src/messaging/contracts.js";
import { queueDepth } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { addToTestProject, collect, gqlOk, wsClient } from "../support/graphql.js";
import { registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { spawnOrchestrator, type OrchestratorProcess } from "../support/orchestrator-process.js";
import { waitUntil } from "../support/wait.js";

const test = suite("several orchestrator instances");
let env: TestEnv;
let second: OrchestratorProcess;

test.before(async () => {
  env = await createTestEnv();
  // Every instance signs with the same key, the one the agents pin.
  second = await spawnOrchestrator({ DATABASE_URL: env.db.url, AMQP_URL: env.vhost.url, FEM_SIGNING_KEY_FILE: env.config.signingKeyFile });
  await env.registerNodes(["site-a"]);
  await env.startAgent("site-a");
});

test.after(async () => {
  await second?.terminate().catch(() => second.kill9());
  await env?.dispose();
});

test("a subscriber on instance B sees state changes and log lines caused through instance A", async () => {
  const tool = await registerNodeScriptTool(env.orchestrator.url, "greet", "for (let i = 1; i <= 20; i++) console.log('greeting ' + i)");
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["site-a"] }] } });
  const workflowId = data.submitWorkflow.id;
  const runId = data.submitWorkflow.tasks[0].runs[0].id;
  const client = wsClient(second.wsUrl);
  try {
    const events = collect<{ kind: string; state: string }>(client, `subscription($id: ID!) { workflowEvents(workflowId: $id) { kind state } }`, { id: workflowId }, "workflowEvents");
    const logs = collect<{ lines: { seq: number }[] }>(client, `subscription($id: ID!) { runLogs(runId: $id) { lines { seq } } }`, { id: runId }, "runLogs");
    await events.waitFor((items) => items.some((e) => e.kind === "WORKFLOW" && e.state === "SUCCEEDED"), 30_000, "B to report the workflow succeeded");
    const [row] = await env.sql<{ n: number }>(`select log_line_count n from run where id = ?`, [runId]);
    await logs.waitFor((items) => items.flatMap((b) => b.lines).length >= row.n, 10_000, "B to stream every line");
    assert.equal(logs.items.flatMap((b) => b.lines.map((l) => l.seq)), Array.from({ length: row.n }, (_, i) => i + 1));
    await events.dispose();
    await logs.dispose();
  } finally {
    await client.dispose();
  }
});

test("with both instances relaying and scheduling, every run is published exactly once", async () => {
  await gqlOk(env.orchestrator.url, `mutation { registerNode(input: { id: "site-idle", capacity: 1000 }) { node { id } } }`);
  await addToTestProject(env.orchestrator.url, ["site-idle"]);
  const tool = await registerNodeScriptTool(env.orchestrator.url, "idle", "0");
  const submit = (url: string, n: number, prefix: string) =>
    gqlOk(url, SUBMIT, { input: { tasks: Array.from({ length: n }, (_, i) => ({ key: `${prefix}${i}`, tool, nodes: ["site-idle"] })) } });
  await Promise.all([submit(env.orchestrator.url, 150, "a"), submit(second.url, 150, "b"), submit(env.orchestrator.url, 50, "c"), submit(second.url, 50, "d")]);
  const queue = nodeQueueNames("site-idle").runs;
  await waitUntil(async () => Number((await env.sql<{ n: string }>(`select count(*) n from outbox where sent_at is null`))[0].n) === 0, 30_000, "the outbox to drain");
  await waitUntil(async () => (await queueDepth(env.vhost.name, queue)) >= 400, 10_000, "400 messages in the node's queue");
  assert.is(await queueDepth(env.vhost.name, queue), 400, "no run was published twice");
  const [outbox] = await env.sql<{ n: string; max: number }>(`select count(*) n, max(attempts) max from outbox where routing_key = 'site-idle.run'`);
  assert.is(Number(outbox.n), 400);
  assert.is(outbox.max, 1);
});

test.run();
