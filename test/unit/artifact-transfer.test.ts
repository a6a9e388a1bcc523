/** The directory artifact store, Range parsing of downloads, and what the agent may send. */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { chunkCount, createDirectoryStore, parseRange } from "../../src/artifacts/index.js";
import { releasedFiles } from "../../src/agent/transfer.js";
import type { JournalRecord } from "../../src/agent/journal.js";
import type { OutputManifest } from "../../src/messaging/contracts.js";

const test = suite("artifact transfer: store, ranges, release rules");
let root: string;
const ID = "7f8e4a52-4b0e-4c1a-9d43-6a1c7b2e9f10";
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), "fem-store-"));
});
test.after(async () => rm(root, { recursive: true, force: true }));

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

test("chunks staged out of order and twice join into the file once it checks; a range reads part of it", async () => {
  const store = createDirectoryStore(root);
  const content = Buffer.from("abcdefghij");
  assert.is(chunkCount(content.length, 4), 3);
  assert.equal(await store.putChunks(ID, 4, [{ index: 2, data: content.subarray(8) }]), [2]);
  assert.equal(await store.putChunks(ID, 4, [{ index: 0, data: content.subarray(0, 4) }]), [0]);
  assert.equal(await store.putChunks(ID, 4, [{ index: 0, data: Buffer.from("XXXX") }]), [], "a chunk is stored once");
  assert.equal([...(await store.stagedChunks(ID, 4))].sort(), [0, 2]);
  await store.putChunks(ID, 4, [{ index: 1, data: content.subarray(4, 8) }]);
  assert.equal(await store.commit(ID, 4, 3, { sizeBytes: 10, sha256: sha256(content) }), { ok: true });
  const file = (await store.open(ID))!;
  assert.is(file.sizeBytes, 10);
  assert.is((await readAll(file.read())).toString(), "abcdefghij");
  assert.is((await readAll(file.read({ start: 3, end: 5 }))).toString(), "def");
  assert.equal(await readdir(join(root, "staging")), [], "staging is cleared");
  await store.remove(ID);
  assert.is(await store.open(ID), null);
});

test("a join that fails its checksum stores nothing", async () => {
  const store = createDirectoryStore(root);
  await store.putChunks(ID, 4, [{ index: 0, data: Buffer.from("abcd") }]);
  const result = await store.commit(ID, 4, 1, { sizeBytes: 4, sha256: "0".repeat(64) });
  assert.ok(!result.ok && /not the 4 bytes/.test(result.problem));
  assert.is(await store.open(ID), null);
  assert.equal((await readdir(join(root, "files"))).filter((n) => !n.startsWith(".")), []);
  await store.discardStaged(ID);
});

test("bytes a crash lost from the staging file (marked staged, never written) fail the join's checksum; a chunk never staged is named", async () => {
  const store = createDirectoryStore(root);
  const content = Buffer.from("abcdefgh");
  await store.putChunks(ID, 4, [{ index: 1, data: content.subarray(4) }]);
  const missing = await store.commit(ID, 4, 2, { sizeBytes: 8, sha256: sha256(content) });
  assert.ok(!missing.ok && /chunk\(s\) 0 of 2 are not staged/.test(missing.problem), JSON.stringify(missing));
  // What an operating system crash can leave: the marker of chunk 0 on disk, its bytes not (a hole of zeros).
  await writeFile(join(root, "staging", ID, "4", "0"), "");
  const lost = await store.commit(ID, 4, 2, { sizeBytes: 8, sha256: sha256(content) });
  assert.ok(!lost.ok && /not the 8 bytes/.test(lost.problem), JSON.stringify(lost));
  assert.is(await store.open(ID), null);
  await store.discardStaged(ID);
});

test("ids that are not UUIDs are refused before they become paths", async () => {
  const store = createDirectoryStore(root);
  const error = await store.open("../../etc/passwd").then(() => null, (err: Error) => err);
  assert.match(error?.message ?? "", /not an artifact id/);
});

test("Range: first-last, open-ended, suffix, past the end (416), several or other units (whole file)", () => {
  assert.equal(parseRange(undefined, 100), null);
  assert.equal(parseRange("bytes=0-9", 100), { start: 0, end: 9 });
  assert.equal(parseRange("bytes=90-", 100), { start: 90, end: 99 });
  assert.equal(parseRange("bytes=-10", 100), { start: 90, end: 99 });
  assert.equal(parseRange("bytes=50-500", 100), { start: 50, end: 99 });
  assert.is(parseRange("bytes=100-", 100), "unsatisfiable");
  assert.is(parseRange("bytes=-0", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=0-1,5-6", 100), null);
  assert.equal(parseRange("items=0-1", 100), null);
});

function record(policy: OutputManifest["policy"], state: "SUCCEEDED" | "FAILED", extra: Partial<JournalRecord> = {}): JournalRecord {
  const file = (path: string) => ({ path, sizeBytes: 1, sha256: "a".repeat(64), refused: null });
  return {
    runId: ID,
    attempt: 1,
    accepted: true,
    pid: null,
    startTicks: null,
    terminal: { type: "run.state", v: 1, nodeId: "n1", runId: ID, attempt: 1, state, at: new Date().toISOString(), outputs: { policy, files: [file("a"), file("b"), { path: "c", sizeBytes: null, sha256: null, refused: "a symbolic link" }], omitted: 0 } },
    reported: true,
    cancelReason: null,
    decisions: [],
    transfers: {},
    lastAt: new Date().toISOString(),
    ...extra,
  };
}

const decision = (path: string, d: "APPROVE" | "REJECT") => ({
  event: { type: "run.outputs" as const, v: 1 as const, nodeId: "n1", runId: ID, attempt: 1, at: "", requestId: ID, decidedBy: "op", decisions: [{ path, decision: d, comment: null }] },
  reported: true,
});
const paths = (r: JournalRecord) => releasedFiles(r).map((f) => f.path);

test("what may leave: auto on success; review when the orchestrator released it; local only on the node; never a file rejected on the node", () => {
  assert.equal(paths(record("auto", "SUCCEEDED")), ["a", "b"]);
  assert.equal(paths(record("auto", "FAILED")), []);
  assert.equal(paths(record("review", "SUCCEEDED")), []);
  assert.equal(paths(record("review", "SUCCEEDED", { transfers: { a: { releasedByOrchestrator: true, sentChunks: 0, sent: false } } })), ["a"]);
  assert.equal(paths(record("local", "SUCCEEDED", { transfers: { a: { releasedByOrchestrator: true, sentChunks: 0, sent: false } } })), [], "the orchestrator cannot release under local");
  assert.equal(paths(record("local", "SUCCEEDED", { decisions: [decision("b", "APPROVE")] })), ["b"]);
  assert.equal(paths(record("auto", "SUCCEEDED", { decisions: [decision("a", "REJECT")] })), ["b"]);
});

test.run();
