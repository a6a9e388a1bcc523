import { randomBytes } from "node:crypto";
import amqp from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { EXCHANGES } from "../../src/messaging/contracts.js";
import { rabbitmqctl } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT, TERMINAL, type WorkflowView } from "../support/fixtures.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("broker faults");
let env: TestEnv;

const TICKER = `const [marker, ms] = process.argv.slice(1); let i = 0; const t = setInterval(() => console.log(marker + ' tick ' + ++i), 50); setTimeout(() => { clearInterval(t); console.log('done'); }, Number(ms));`;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a"], 4);
  await env.startAgent("site-a", { capacity: 4 });
  await registerNodeScriptTool(env.orchestrator.url, "ticker", TICKER);
});

test.after(async () => {
  await rabbitmqctl("start_app").catch(() => undefined);
  await env?.dispose();
});

async function finished(id: string, timeoutMs = 60_000): Promise<WorkflowView> {
  return waitUntil(async () => {
    const w = await getWorkflow(env.orchestrator.url, id);
    return TERMINAL.includes(w.state) ? w : undefined;
  }, timeoutMs, "the workflow to finish");
}

/** Every line of the run is stored once, gap-free, and the ticks are all there in order. */
async function assertCompleteTicks(runId: string, marker: string): Promise<number> {
  const lines = await env.sql<{ seq: number; text: string }>(`select seq, text from log_line where run_id = ? order by seq`, [runId]);
  assert.equal(lines.map((l) => l.seq), Array.from({ length: lines.length }, (_, i) => i + 1), "gap-free");
  const ticks = lines.filter((l) => l.text.startsWith(`${marker} tick`)).map((l) => Number(l.text.split(" tick ")[1]));
  assert.equal(ticks, Array.from({ length: ticks.length }, (_, i) => i + 1), "every tick once, in order");
  return ticks.length;
}

const ticker = (marker: string, ms: number) => ({ key: "t", tool: "ticker@1.0.0", nodes: ["site-a"], params: { value: marker, count: ms } });

test("while RabbitMQ is down the API answers and accepts work; afterwards everything runs and no log line is lost", async () => {
  const marker = `fem-outage-${randomBytes(3).toString("hex")}`;
  const running = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [ticker(marker, 6_000)] } });
  await waitUntil(async () => (await getWorkflow(env.orchestrator.url, running.submitWorkflow.id)).state === "RUNNING", 15_000, "the run to start");
  await sleep(500);
  await rabbitmqctl("stop_app");
  try {
    const nodes = await gqlOk(env.orchestrator.url, `{ nodes { nodes { id } } }`);
    assert.is(nodes.nodes.nodes.length, 1, "reads work without the broker");
    const accepted = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [ticker(`${marker}-later`, 300)] } });
    assert.ok(accepted.submitWorkflow.id, "submissions are accepted without the broker (outbox)");
    await sleep(3_000);
    await rabbitmqctl("start_app");
    await rabbitmqctl("await_startup");
    const [first, later] = await Promise.all([finished(running.submitWorkflow.id), finished(accepted.submitWorkflow.id)]);
    assert.is(first.state, "SUCCEEDED");
    assert.is(later.state, "SUCCEEDED");
    assert.ok((await assertCompleteTicks(first.tasks[0].runs[0].id, marker)) >= 80, "the ticks printed during the outage arrived");
  } finally {
    await rabbitmqctl("start_app").catch(() => undefined);
  }
});

test("connections closed by the broker every 2 s under load: consumers recover and nothing is lost", async () => {
  const marker = `fem-churn-${randomBytes(3).toString("hex")}`;
  const data = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: { tasks: Array.from({ length: 24 }, (_, i) => ({ ...ticker(`${marker}-${i}`, 1_000), key: `t${i}` })) },
  });
  for (let i = 0; i < 6; i++) {
    await sleep(2_000);
    await rabbitmqctl("close_all_connections", "-p", env.vhost.name, "fault test: connection churn");
  }
  const churned = await finished(data.submitWorkflow.id, 90_000);
  assert.is(churned.state, "SUCCEEDED");
  for (const task of churned.tasks) {
    assert.is(task.runs.length, 1, "no run was retried or duplicated");
    await assertCompleteTicks(task.runs[0].id, `${marker}-${task.key.slice(1)}`);
  }
  // Recovery: a fresh run goes through within 10 s of the last close.
  const started = Date.now();
  const fresh = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [ticker(`${marker}-fresh`, 100)] } });
  const done = await finished(fresh.submitWorkflow.id, 10_000);
  assert.is(done.state, "SUCCEEDED");
  console.log(`    (a fresh run finished ${Date.now() - started} ms after the churn)`);
});

test("every node event delivered twice, copies arriving late, leaves state and logs exactly right", async () => {
  // A tap re-publishes a copy of every node event (marked, so copies are not copied again), as the
  // node's own broker user: RabbitMQ refuses a copy whose user_id is not its publisher's.
  const connection = await amqp.connect(env.vhost.url);
  const channel = await connection.createChannel();
  const asNode = await amqp.connect(await env.nodeAmqpUrl("site-a"));
  const copier = await asNode.createChannel();
  const tap = `test.tap.${randomBytes(3).toString("hex")}`;
  await channel.assertQueue(tap, { exclusive: true });
  await channel.bindQueue(tap, EXCHANGES.nodeEvents, "#");
  let copies = 0;
  let tapClosed = false;
  await channel.consume(tap, (msg) => {
    if (!msg) return;
    if (!msg.properties.headers?.["x-test-copy"]) {
      copies += 1;
      setTimeout(() => {
        if (tapClosed) return;
        copier.publish(EXCHANGES.nodeEvents, msg.fields.routingKey, msg.content, { ...msg.properties, headers: { ...msg.properties.headers, "x-test-copy": 1 } });
      }, 30 + (copies % 5) * 20);
    }
    channel.ack(msg);
  });
  try {
    const marker = `fem-dup-${randomBytes(3).toString("hex")}`;
    const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [ticker(marker, 1_500)] } });
    const done = await finished(data.submitWorkflow.id);
    await sleep(1_000);
    assert.ok(copies > 5, `events were duplicated (${copies})`);
    assert.is(done.state, "SUCCEEDED");
    const run = (await getWorkflow(env.orchestrator.url, done.id)).tasks[0].runs[0];
    assert.is(run.state, "SUCCEEDED");
    const ticks = await assertCompleteTicks(run.id, marker);
    const [row] = await env.sql<{ n: string; count: number }>(`select (select count(*) from log_line where run_id = ?) n, log_line_count count from run where id = ?`, [run.id, run.id]);
    assert.is(Number(row.n), row.count, "the line counter counts each line once");
    assert.ok(ticks >= 20);
  } finally {
    tapClosed = true;
    await channel.close().catch(() => undefined);
    await connection.close().catch(() => undefined);
    await asNode.close().catch(() => undefined);
  }
});

test("a run longer than the broker's consumer timeout is not redelivered or run twice", async () => {
  const previous = (await rabbitmqctl("eval", "application:get_env(rabbit, consumer_timeout).")).trim();
  await rabbitmqctl("eval", "application:set_env(rabbit, consumer_timeout, 2000).");
  try {
    // A fresh agent opens its channels under the low timeout.
    await env.registerNodes(["site-slow"], 1);
    await env.startAgent("site-slow", { capacity: 1 });
    const marker = `fem-consumer-timeout-${randomBytes(3).toString("hex")}`;
    const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ ...ticker(marker, 6_000), nodes: ["site-slow"] }] } });
    const done = await finished(data.submitWorkflow.id, 30_000);
    assert.is(done.state, "SUCCEEDED");
    assert.is(done.tasks[0].runs.length, 1);
    const starts = await env.sql<{ n: string }>(`select count(*) n from log_line where run_id = ? and stream = 'SYSTEM' and text like 'starting:%'`, [done.tasks[0].runs[0].id]);
    assert.is(Number(starts[0].n), 1, "started once");
    assert.not.match(env.agents.at(-1)!.output(), /duplicate delivery/);
  } finally {
    const value = /\{ok,(\d+)\}/.exec(previous)?.[1] ?? "1800000";
    await rabbitmqctl("eval", `application:set_env(rabbit, consumer_timeout, ${value}).`);
  }
});

test.run();
