/**
 * `npm run bench`: throughput of the hot paths next to raw baselines measured in the same run on the
 * same services (own database and vhost, removed afterwards). Prints figures and ratios.
 *   - log ingestion (agent-shaped run.logs batches → stored lines) vs a raw multi-row INSERT
 *   - dispatch (submitWorkflow → outbox → confirmed publishes) vs raw amqplib confirm publishing
 *   - output transfer (a real agent sends a released file in chunks → stored and checked) vs raw
 *     amqplib confirm publishing of the same bytes in chunks of the same size
 */
import "reflect-metadata";
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TRANSFER_CHUNK_BYTES } from "../src/messaging/contracts.js";
import amqp from "amqplib";
import { MikroORM } from "@mikro-orm/postgresql";
import { createTestEnv } from "../test/support/env.js";
import { createEventPublisher } from "../test/support/amqp.js";
import { gqlOk } from "../test/support/graphql.js";
import { registerNodeScriptTool, SUBMIT } from "../test/support/fixtures.js";
import { waitUntil } from "../test/support/wait.js";

const LINES = Number(process.argv[2] ?? 100_000);
const LINES_PER_BATCH = 500;
const DISPATCHES = Number(process.argv[3] ?? 2_000);
const TRANSFER_MIB = Number(process.argv[4] ?? 100);

const rate = (count: number, ms: number) => Math.round((count / ms) * 1000);

async function rawInsertBaseline(databaseUrl: string, lines: number): Promise<number> {
  const orm = await MikroORM.init({ clientUrl: databaseUrl, entities: [], discovery: { warnWhenNoEntities: false } });
  const conn = orm.em.getConnection();
  await conn.execute(`create table bench_raw (run_id uuid, seq int, stream text, at timestamptz, text text, primary key (run_id, seq))`);
  const runId = randomUUID();
  const started = performance.now();
  for (let from = 1; from <= lines; from += 1_000) {
    const rows = Array.from({ length: Math.min(1_000, lines - from + 1) }, (_, i) => ({ run_id: runId, seq: from + i, stream: "STDOUT", at: new Date().toISOString(), text: `line ${from + i} of the raw baseline` }));
    await conn.execute(`insert into bench_raw select * from jsonb_to_recordset(?::jsonb) as x(run_id uuid, seq int, stream text, at timestamptz, text text)`, [JSON.stringify(rows)]);
  }
  const ms = performance.now() - started;
  await conn.execute(`drop table bench_raw`);
  await orm.close(true);
  return rate(lines, ms);
}

async function rawPublishBaseline(url: string, count: number): Promise<number> {
  const connection = await amqp.connect(url, { noDelay: true });
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue("bench.raw", { durable: true, arguments: { "x-queue-type": "quorum" } });
  const body = Buffer.alloc(1024, "x");
  const started = performance.now();
  for (let i = 0; i < count; i++) channel.sendToQueue("bench.raw", body, { persistent: true });
  await channel.waitForConfirms();
  const ms = performance.now() - started;
  await channel.deleteQueue("bench.raw");
  await connection.close();
  return rate(count, ms);
}

/** MiB/s of publishing `mib` MiB in chunks of TRANSFER_CHUNK_BYTES to a quorum queue with confirms (a window of 8, as the agent). */
async function rawChunkBaseline(url: string, mib: number): Promise<number> {
  const connection = await amqp.connect(url, { noDelay: true });
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue("bench.chunks", { durable: true, arguments: { "x-queue-type": "quorum" } });
  const body = Buffer.alloc(TRANSFER_CHUNK_BYTES, "x");
  const chunks = Math.ceil((mib * 1024 * 1024) / TRANSFER_CHUNK_BYTES);
  const started = performance.now();
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < chunks; i++) {
    while (inflight.size >= 8) await Promise.race(inflight);
    const sent: Promise<void> = new Promise<void>((resolve, reject) => channel.sendToQueue("bench.chunks", body, { persistent: true }, (err) => (err ? reject(err) : resolve()))).finally(() => inflight.delete(sent));
    inflight.add(sent);
  }
  await Promise.all(inflight);
  const ms = performance.now() - started;
  await channel.deleteQueue("bench.chunks");
  await connection.close();
  return (mib / ms) * 1000;
}

const env = await createTestEnv({ relayBatchSize: 500, relayPollMs: 20 });
try {
  await env.registerNodes(["bench-a"], 1_000);
  const tool = await registerNodeScriptTool(env.orchestrator.url, "bench", "0");

  // Ingestion: one run, its lines published as an agent would.
  const submitted = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["bench-a"] }] } });
  const runId: string = submitted.submitWorkflow.tasks[0].runs[0].id;
  const events = await createEventPublisher(await env.nodeAmqpUrl("bench-a"));
  const baseLines = await rawInsertBaseline(env.db.url, LINES);
  const started = performance.now();
  const at = new Date().toISOString();
  const publishing: Promise<void>[] = [];
  for (let from = 1; from <= LINES; from += LINES_PER_BATCH) {
    const lines = Array.from({ length: Math.min(LINES_PER_BATCH, LINES - from + 1) }, (_, i) => ({ seq: from + i, stream: "STDOUT", at, text: `line ${from + i} of the benchmark` }));
    publishing.push(events.publish({ type: "run.logs", v: 1, nodeId: "bench-a", runId, attempt: 1, lines }));
  }
  await Promise.all(publishing);
  await waitUntil(async () => (await env.sql<{ n: number }>(`select log_line_count n from run where id = ?`, [runId]))[0].n >= LINES, 300_000, "every line stored", 20);
  const ingestMs = performance.now() - started;
  await events.close();

  // Dispatch: one workflow of many single-node tasks, through the outbox to the node's queue.
  const baseDispatch = await rawPublishBaseline(env.vhost.url, DISPATCHES);
  const tasks = Array.from({ length: DISPATCHES }, (_, i) => ({ key: `t${i}`, tool, nodes: ["bench-a"] }));
  const dispatchStarted = performance.now();
  await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks } });
  const submitMs = performance.now() - dispatchStarted;
  await waitUntil(async () => Number((await env.sql<{ n: string }>(`select count(*) n from outbox where sent_at is null`))[0].n) === 0, 300_000, "the outbox to drain", 20);
  const dispatchMs = performance.now() - dispatchStarted;

  const ingest = rate(LINES, ingestMs);
  const dispatch = rate(DISPATCHES, dispatchMs);
  console.log(`log ingestion   ${LINES} lines in ${Math.round(ingestMs)} ms = ${ingest} lines/s; raw multi-row INSERT ${baseLines} rows/s; ratio ${(ingest / baseLines).toFixed(2)}`);
  console.log(`dispatch        ${DISPATCHES} runs submitted in ${Math.round(submitMs)} ms, all published after ${Math.round(dispatchMs)} ms = ${dispatch} runs/s end to end; raw amqplib confirm publish ${baseDispatch} msg/s; ratio ${(dispatch / baseDispatch).toFixed(2)}`);
  console.log(`  (the scheduler and relay overlap the submit's answer; the last run was published ${Math.round(dispatchMs - submitMs)} ms after it)`);

  // Transfer: a real agent releases a file of TRANSFER_MIB MiB under `auto`.
  await env.registerNodes(["bench-t"]);
  const policy = join(env.sandboxRoot, "bench-t-policy.yaml");
  await writeFile(policy, "allow: any\noutputs: auto\n");
  const agent = await env.startAgent("bench-t", { env: { FEM_POLICY_FILE: policy } });
  const writer = `const fs = require('fs'); const f = fs.openSync('file.bin', 'w'); const b = require('crypto').randomBytes(1048576); for (let i = 0; i < ${TRANSFER_MIB}; i++) fs.writeSync(f, b); fs.closeSync(f);`;
  const bigTool = await registerNodeScriptTool(env.orchestrator.url, "bench-file", writer, { outputs: ["file.bin"] });
  await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "f", tool: bigTool, nodes: ["bench-t"] }] } });
  const [stored] = await waitUntil(async () => {
    const rows = await env.sql<{ ms: number; state: string }>(`select extract(epoch from stored_at - decided_at) * 1000 as ms, state from artifact where path = 'file.bin'`);
    return rows[0]?.state === "AVAILABLE" ? rows : undefined;
  }, 600_000, "the file to be stored", 100);
  await agent.stop();
  const transferMiBs = (TRANSFER_MIB / Number(stored.ms)) * 1000;
  const rawMiBs = await rawChunkBaseline(env.vhost.url, TRANSFER_MIB);
  console.log(`output transfer ${TRANSFER_MIB} MiB in ${Math.round(Number(stored.ms))} ms = ${transferMiBs.toFixed(1)} MiB/s (chunks of ${TRANSFER_CHUNK_BYTES / 1024} KiB, stored and checked); raw amqplib confirm publish of the same chunks ${rawMiBs.toFixed(1)} MiB/s; ratio ${(transferMiBs / rawMiBs).toFixed(2)}`);
} finally {
  await env.dispose();
}
process.exit(0);
