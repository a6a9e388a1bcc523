import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDirectoryStore, type ArtifactStore } from "../../src/artifacts/index.js";
import { createChunkIngestion } from "../../src/ingestion/index.js";
import { createLogger } from "../../src/logger.js";
import type { NodeEventDelivery } from "../../src/messaging/broker.js";
import { nodeBrokerUser, runChunkWire } from "../../src/messaging/contracts.js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createEventPublisher, type EventPublisher } from "../support/amqp.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("bounded and sanitised node events");
let env: TestEnv;
let events: EventPublisher;
let tool: string;
const nodeId = "site-b";
/** Another node, whose broker user claims site-b's runs. */
const otherNodeId = "site-c";
const MAX_EVENT_BYTES = 65_536;
const MAX_LOG_BYTES = 1_000;

test.before(async () => {
  env = await createTestEnv({ maxEventBytes: MAX_EVENT_BYTES, maxLogBytesPerRun: MAX_LOG_BYTES });
  await env.registerNodes([nodeId, otherNodeId], 50);
  tool = await registerNodeScriptTool(env.orchestrator.url, "echo", "console.log('hi')");
  events = await createEventPublisher(await env.nodeAmqpUrl(nodeId));
});

test.after(async () => {
  await events?.close();
  await env?.dispose();
});

const at = () => new Date().toISOString();
const state = (runId: string, s: string, extra: Record<string, unknown> = {}) => ({ type: "run.state", v: 1, nodeId, runId, attempt: 1, state: s, at: at(), ...extra });
const logs = (runId: string, lines: { seq: number; text: string }[]) => ({
  type: "run.logs",
  v: 1,
  nodeId,
  runId,
  attempt: 1,
  lines: lines.map((l) => ({ seq: l.seq, stream: "STDOUT", at: at(), text: l.text })),
});

/** A fresh run of this node, queued and then RUNNING as its (played) agent reports. */
async function runningRun(): Promise<string> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: [nodeId] }] } });
  const runId: string = data.submitWorkflow.tasks[0].runs[0].id;
  await waitUntil(async () => (await run(runId)).state === "QUEUED", 10_000, "the run to be queued");
  await events.publish(state(runId, "RUNNING"));
  await waitUntil(async () => (await run(runId)).state === "RUNNING", 10_000, "the run to be RUNNING");
  return runId;
}

async function run(runId: string) {
  const [row] = await env.sql<Record<string, any>>(
    `select state, failure_reason, exit_code, message, result, log_line_count, log_truncated_seq from run where id = ?`,
    [runId],
  );
  return row;
}

async function ended(runId: string) {
  return waitUntil(async () => {
    const row = await run(runId);
    return ["SUCCEEDED", "FAILED", "CANCELLED"].includes(row.state) ? row : undefined;
  }, 15_000, "the run to end");
}

async function deadLetters(): Promise<{ queue: string; reason: string; body: string }[]> {
  const data = await gqlOk(env.orchestrator.url, `{ deadLetters(first: 50) { nodes { queue reason body } } }`);
  return data.deadLetters.nodes;
}

test("an event over the size limit is dead-lettered too_large, unparsed, and stores nothing", async () => {
  const runId = await runningRun();
  const big = logs(runId, [1, 2, 3, 4, 5].map((seq) => ({ seq, text: "x".repeat(16_000) })));
  await events.publish(big);
  const letter = await waitUntil(async () => (await deadLetters()).find((l) => l.reason === "too_large"), 15_000, "a too_large dead letter");
  assert.is(letter.queue, "fem.orchestrator.node-events");
  assert.ok(letter.body.length <= 65_536, "only the start of the body is kept");
  assert.is((await run(runId)).log_line_count, 0);
});

test("a chunk is dead-lettered, and nothing staged, without its fem-chunk header or with one its schema refuses", async () => {
  const runId = await runningRun();
  const data = Buffer.from("chunk bytes");
  const sha256 = createHash("sha256").update(data).digest("hex");
  const chunk = { type: "run.chunk", v: 1, nodeId, runId, attempt: 1, path: "out.bin", fileSha256: sha256, index: 0, chunkBytes: 262_144, sha256, data } as const;
  const ofChunks = async () => (await deadLetters()).filter((l) => l.queue === "fem.orchestrator.chunks");
  const before = (await ofChunks()).length;
  // The bytes alone, as an old agent's JSON would also arrive: no header with the chunk's fields.
  await events.publishRaw(data, `node.${nodeId}.run.chunk.bytes`, "application/octet-stream");
  await events.publishChunk({ ...chunk, index: -1 });
  const letters = await waitUntil(async () => ((await ofChunks()).length >= before + 2 ? ofChunks() : undefined), 15_000, "two chunk dead letters");
  assert.ok(letters.slice(before).every((l) => l.body === "chunk bytes"), "the body is kept as it came");
  assert.equal(await env.sql(`select id from artifact where run_id = ?`, [runId]), []);
});

test("a chunk another node publishes for this node's run is dead-lettered forged, and nothing is staged", async () => {
  const runId = await runningRun();
  const data = Buffer.from("not yours");
  const sha256 = createHash("sha256").update(data).digest("hex");
  const other = await createEventPublisher(await env.nodeAmqpUrl(otherNodeId));
  try {
    const ofChunks = async () => (await deadLetters()).filter((l) => l.queue === "fem.orchestrator.chunks" && l.body === "not yours");
    // Its own node id (the broker checks the user), another node's run.
    await other.publishChunk({ type: "run.chunk", v: 1, nodeId: otherNodeId, runId, attempt: 1, path: "out.bin", fileSha256: sha256, index: 0, chunkBytes: 262_144, sha256, data });
    const [letter] = await waitUntil(async () => ((await ofChunks()).length > 0 ? ofChunks() : undefined), 15_000, "the forged chunk's dead letter");
    assert.is(letter!.reason, "forged");
    assert.equal(await env.sql(`select id from artifact where run_id = ?`, [runId]), []);
  } finally {
    await other.close();
  }
});

test("a chunk the store fails on goes back to the broker alone: the other file's chunk in its batch is stored", async () => {
  const runId = await runningRun();
  const good = Buffer.from("good bytes");
  const bad = Buffer.from("bad bytes");
  const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");
  const files = [
    { path: "good.bin", sizeBytes: good.length, sha256: sha(good), refused: null },
    { path: "bad.bin", sizeBytes: bad.length, sha256: sha(bad), refused: null },
  ];
  await events.publish(state(runId, "SUCCEEDED", { exitCode: 0, outputs: { policy: "auto", files, omitted: 0 } }));
  const artifacts = await waitUntil(async () => {
    const rows = await env.sql<{ id: string; path: string; state: string }>(`select id, path, state from artifact where run_id = ?`, [runId]);
    return rows.length === 2 && rows.every((r) => r.state === "APPROVED") ? rows : undefined;
  }, 15_000, "both files APPROVED");
  const badId = artifacts.find((a) => a.path === "bad.bin")!.id;
  const root = await mkdtemp(join(tmpdir(), "fem-chunks-"));
  const real = createDirectoryStore(root);
  // A disk that fails for one file only (a full or broken volume under it, say).
  const store: ArtifactStore = {
    ...real,
    putChunks: (artifactId, chunkBytes, chunks) => (artifactId === badId ? Promise.reject(new Error("EIO: no space for this one")) : real.putChunks(artifactId, chunkBytes, chunks)),
  };
  const ingestion = createChunkIngestion({ orm: env.orchestrator.orm, store, afterCommit: () => undefined, logger: createLogger("error"), brokerUserOf: (id) => nodeBrokerUser(env.vhost.name, id) });
  const settled = new Map<string, string>();
  const delivery = (path: string, data: Buffer): NodeEventDelivery => {
    const { body, headers } = runChunkWire({ type: "run.chunk", v: 1, nodeId, runId, attempt: 1, path, fileSha256: sha(data), index: 0, chunkBytes: 262_144, sha256: sha(data), data });
    return {
      body,
      headers,
      messageId: path,
      routingKey: `node.${nodeId}.run.chunk.bytes`,
      userId: nodeBrokerUser(env.vhost.name, nodeId),
      ack: () => settled.set(path, "ack"),
      retry: () => settled.set(path, "retry"),
      deadLetter: (_err, reason) => settled.set(path, `dead-letter ${reason}`),
    };
  };
  try {
    // Delivered together: one batch.
    ingestion.accept(delivery("bad.bin", bad));
    ingestion.accept(delivery("good.bin", good));
    await waitUntil(async () => (settled.size === 2 ? true : undefined), 15_000, "both chunks settled");
    assert.equal(Object.fromEntries(settled), { "bad.bin": "retry", "good.bin": "ack" });
    const [stored] = await env.sql<{ state: string }>(`select state from artifact where run_id = ? and path = 'good.bin'`, [runId]);
    assert.is(stored!.state, "AVAILABLE");
  } finally {
    await ingestion.stop(5_000);
    await rm(root, { recursive: true, force: true });
  }
});

test("a result and a message holding NUL characters end the run with them replaced and noted", async () => {
  const runId = await runningRun();
  await events.publish(state(runId, "SUCCEEDED", { exitCode: 0, message: "done\u0000", result: { "k\u0000": ["a\u0000b", 1] } }));
  const row = await ended(runId);
  assert.is(row.state, "SUCCEEDED");
  assert.equal(row.result, { "k\uFFFD": ["a\uFFFDb", 1] });
  assert.match(row.message, /^done\uFFFD; 1 NUL character\(s\) in the message replaced by U\+FFFD; 2 NUL character\(s\) in the result replaced/);
});

test("log text holding NUL characters is stored with them replaced", async () => {
  const runId = await runningRun();
  await events.publish(logs(runId, [{ seq: 1, text: "a\u0000b" }]));
  const rows = await waitUntil(async () => {
    const found = await env.sql<{ text: string }>(`select text from log_line where run_id = ?`, [runId]);
    return found.length > 0 ? found : undefined;
  }, 10_000, "the line to be stored");
  assert.is(rows[0].text, "a\uFFFDb");
});

test("a log flood past the per-run cap stores one truncation notice and nothing past it", async () => {
  const runId = await runningRun();
  const line = (seq: number) => ({ seq, text: String(seq).padStart(100, ".") });
  for (let from = 1; from <= 50; from += 10) {
    await events.publish(logs(runId, Array.from({ length: 10 }, (_, i) => line(from + i))));
  }
  // A redelivered batch past the cap counts once.
  await events.publish(logs(runId, Array.from({ length: 10 }, (_, i) => line(41 + i))));
  await events.publish(state(runId, "SUCCEEDED", { exitCode: 0 }));
  await ended(runId);
  await env.orchestrator.ingestion.drain(5_000);
  const rows = await env.sql<{ seq: number; stream: string; text: string }>(`select seq, stream, text from log_line where run_id = ? order by seq`, [runId]);
  assert.equal(rows.map((r) => r.seq), Array.from({ length: 11 }, (_, i) => i + 1), "gap-free, ending at the notice");
  assert.ok(rows.slice(0, 10).every((r) => r.stream === "STDOUT" && r.text.length === 100));
  const notice = rows[10];
  assert.is(notice.stream, "SYSTEM");
  assert.match(notice.text, /log truncated: over the 1000-byte limit per run \(FEM_MAX_LOG_BYTES_PER_RUN\); 40 line\(s\) and 4000 bytes dropped from line 11 on/);
  const row = await run(runId);
  assert.is(row.log_truncated_seq, 11);
  assert.is(row.log_line_count, 11);
});

test("an exit code out of PostgreSQL's range is refused and ends the run FAILED with the reason", async () => {
  const failing = await runningRun();
  await events.publish(state(failing, "FAILED", { exitCode: 2 ** 40, failureReason: "EXIT_CODE" }));
  const failed = await ended(failing);
  assert.is(failed.state, "FAILED");
  assert.is(failed.exit_code, null);
  assert.match(failed.message, /exit code 1099511627776 refused: outside the integer range/);

  const succeeding = await runningRun();
  await events.publish(state(succeeding, "SUCCEEDED", { exitCode: -(2 ** 40) }));
  const row = await ended(succeeding);
  assert.is(row.state, "FAILED");
  assert.is(row.failure_reason, "EXIT_CODE");
});

test("a terminal report PostgreSQL refuses still ends the run, FAILED, saying why", async () => {
  await env.sql(`alter table run add constraint test_refuse_message check (message is null or message not like '%refuse-me%')`);
  try {
    const runId = await runningRun();
    await events.publish(state(runId, "SUCCEEDED", { exitCode: 0, message: "refuse-me", result: { ok: true } }));
    const row = await ended(runId);
    assert.is(row.state, "FAILED");
    assert.is(row.result, null);
    assert.match(row.message, /the node's SUCCEEDED report could not be stored \(PostgreSQL error 23514 \(check violation\), constraint test_refuse_message\); stored without its result/);
  } finally {
    await env.sql(`alter table run drop constraint test_refuse_message`);
  }
});

test("a dead letter that cannot be stored is dropped after its attempts and does not stall the others", async () => {
  await env.sql(`alter table dead_letter add constraint test_unstorable check (body not like '%unstorable%')`);
  try {
    const droppedBefore = env.orchestrator.deadLetters.stats().dropped;
    await events.publishRaw(Buffer.from("unstorable"), `node.${nodeId}.run.state`);
    await events.publishRaw(Buffer.from("after\u0000the bad one"), `node.${nodeId}.run.state`);
    await waitUntil(async () => (await deadLetters()).some((l) => l.body === "after\uFFFDthe bad one"), 15_000, "the next letter to be stored, NUL replaced");
    await waitUntil(() => env.orchestrator.deadLetters.stats().dropped > droppedBefore, 15_000, "the unstorable letter to be dropped");
  } finally {
    await env.sql(`alter table dead_letter drop constraint test_unstorable`);
  }
});

test.run();
