import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createLogBatcher } from "../../src/agent/log-batcher.js";
import { listLeftoverSpools, replaySpool } from "../../src/agent/log-replay.js";
import { createLogSink, createRunSpool, segmentName, spoolDirOf } from "../../src/agent/log-spool.js";
import { silentLogger } from "../../src/agent/log.js";
import type { Outbox } from "../../src/agent/outbox.js";
import type { LogLineWire, AgentEvent, RunLogsEvent } from "../../src/messaging/contracts.js";
import { waitUntil } from "../support/wait.js";

const test = suite("log spool: lines on disk before they are sent, replayed after a crash");
let root: string;

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), "fem-spool-unit-"));
});
test.after(async () => rm(root, { recursive: true, force: true }));

/** An outbox that holds what it is given until `confirmAll`, as the broker's confirms would. */
function holdingOutbox() {
  const sent: AgentEvent[] = [];
  let settles: ((ok: boolean) => void)[] = [];
  const outbox: Outbox = {
    send: (event) => {
      sent.push(event);
      return new Promise((resolve) => settles.push(resolve));
    },
    size: () => settles.length,
    congested: () => false,
    whenUncongested: async () => undefined,
    stop: async () => undefined,
  };
  return {
    outbox,
    sent,
    confirmAll(ok = true) {
      for (const settle of settles.splice(0)) settle(ok);
      settles = [];
    },
  };
}

/** A run's batcher wired as the agent wires it: spool, then sink, then the outbox. */
function spooledBatcher(runId: string, maxBatchBytes: number, maxBatchMs: number) {
  const dir = spoolDirOf(root, runId, 1);
  const spool = createRunSpool(dir, { log: silentLogger });
  const box = holdingOutbox();
  const sink = createLogSink(spool, box.outbox);
  const batcher = createLogBatcher({ nodeId: "n", runId, attempt: 1, maxBatchBytes, maxBatchMs }, { send: (e) => sink.send(e), record: (l) => spool.append(l) });
  return { dir, spool, box, sink, batcher };
}

const line = (seq: number, text = `line ${seq}`): LogLineWire => ({ seq, stream: "STDOUT", at: new Date(0).toISOString(), text });
const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => line(from + i));
const readSpool = async (dir: string) =>
  (await Promise.all((await readdir(dir)).sort().map((name) => readFile(join(dir, name), "utf8"))))
    .join("")
    .split("\n")
    .filter(Boolean)
    .map((text) => (JSON.parse(text) as LogLineWire).seq);

test("lines are in the spool file as soon as they are numbered, and reach the outbox only after the fsync", async () => {
  const { dir, spool, box, sink, batcher } = spooledBatcher("run-a", 1_000_000, 60_000);
  batcher.write("STDOUT", Buffer.from("one\ntwo\nthr"));
  assert.equal(await readSpool(dir), [1, 2], "the two complete lines are written before write() returns");
  assert.is(box.sent.length, 0, "nothing is sent before a flush");
  batcher.write("STDOUT", Buffer.from("ee\n"));
  batcher.flush();
  assert.is(box.sent.length, 0, "a batch waits for its fsync");
  await sink.handedOver();
  assert.equal((box.sent[0] as RunLogsEvent).lines.map((l) => l.text), ["one", "two", "three"]);
  batcher.stop();
  spool.close();
  box.confirmAll();
  await waitUntil(async () => (await readdir(join(root, "spool"))).includes("run-a-1") === false, 5_000, "the confirmed spool to be removed");
});

test("segments rotate, a wholly confirmed segment is deleted, and a spool whose lines are unconfirmed is kept", async () => {
  const dir = spoolDirOf(root, "run-b", 2);
  const spool = createRunSpool(dir, { log: silentLogger, segmentBytes: 1_000 });
  for (let seq = 1; seq <= 100; seq += 10) spool.append(lines(seq, seq + 9));
  await spool.sync();
  const segments = (await readdir(dir)).sort();
  assert.ok(segments.length > 3, `several segments (${segments.length})`);
  assert.equal(await readSpool(dir), lines(1, 100).map((l) => l.seq));
  spool.confirmed(50);
  await waitUntil(async () => (await readSpool(dir))[0]! > 1, 5_000, "confirmed segments to go");
  const left = await readSpool(dir);
  assert.ok(left[0]! <= 51, "no unconfirmed line is deleted");
  assert.is(left.at(-1), 100);
  spool.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok((await readdir(dir)).length > 0, "closed but unconfirmed: kept for replay");
  spool.confirmed(100);
  await waitUntil(async () => !(await readdir(join(root, "spool"))).includes("run-b-2"), 5_000, "the spool to be removed");
});

test("a leftover spool is replayed in seq order across segments, a torn last line left out, and removed once confirmed", async () => {
  const dir = spoolDirOf(root, "0b1e-uuid-like-id", 3);
  await mkdir(dir, { recursive: true });
  const json = (from: number, to: number) => lines(from, to).map((l) => `${JSON.stringify(l)}\n`).join("");
  await writeFile(join(dir, segmentName(1)), json(1, 2_500));
  await writeFile(join(dir, segmentName(2_501)), json(2_501, 4_000));
  await appendFile(join(dir, segmentName(2_501)), `{"seq":4001,"stream":"STDOUT","at":"19`);
  const spools = await listLeftoverSpools(root);
  const leftover = spools.get("0b1e-uuid-like-id:3");
  assert.ok(leftover, "found by run id and attempt");
  const box = holdingOutbox();
  const result = await replaySpool(leftover, { nodeId: "n", maxBatchBytes: 65_536 }, { outbox: box.outbox, log: silentLogger });
  assert.equal(result, { lastSeq: 4_000, lines: 4_000 });
  const seqs = box.sent.flatMap((e) => (e as RunLogsEvent).lines.map((l) => l.seq));
  assert.equal(seqs, lines(1, 4_000).map((l) => l.seq));
  assert.ok(box.sent.every((e) => (e as RunLogsEvent).lines.length <= 2_000));
  box.confirmAll();
  await waitUntil(async () => !(await readdir(join(root, "spool"))).includes("0b1e-uuid-like-id-3"), 5_000, "the replayed spool to be removed");
});

test("a flood of lines is spooled with one fsync per batch, not per line (throughput printed)", async () => {
  const { spool, box, sink, batcher } = spooledBatcher("flood", 65_536, 100);
  const total = 200_000;
  let chunk = "";
  const started = performance.now();
  for (let i = 1; i <= total; i += 1) {
    chunk += `line ${i} of a run that prints quickly\n`;
    if (chunk.length >= 65_536 || i === total) {
      batcher.write("STDOUT", Buffer.from(chunk));
      chunk = "";
      // Yield as a pipe would, so fsyncs complete while reading goes on.
      if (sink.congested()) await sink.whenUncongested();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  batcher.flush();
  await sink.handedOver();
  const ms = performance.now() - started;
  const sent = box.sent.flatMap((e) => (e as RunLogsEvent).lines.map((l) => l.seq));
  assert.is(sent.length, total);
  assert.ok(sent.every((seq, i) => seq === i + 1));
  console.log(`    (${total} lines spooled and handed to the outbox in ${Math.round(ms)} ms: ${Math.round(total / (ms / 1000))} lines/s, ${box.sent.length} batches)`);
  batcher.stop();
  spool.close();
  box.confirmAll();
});

test.run();
