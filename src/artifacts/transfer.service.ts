/**
 * Receiving released files: each `run.chunk` is checked (its node's own run, a released artifact,
 * the file's sha256 as the manifest listed it, the chunk's place, length and sha256), staged in the
 * artifact store once per (artifact, index), and the file is joined, checked whole and made
 * AVAILABLE when the last chunk is in. A corrupt chunk, or a whole file that fails its checksum, is
 * asked for again with a `run.release` naming what is missing. Framework-free.
 */
import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import type { ChangeSet } from "../kernel/index.js";
import { TRANSFER_CHUNK_BYTES, type RunChunkEvent, type RunOutputLostEvent } from "../messaging/contracts.js";
import { json } from "../db/sql.js";
import { enqueueRelease, settleInputWaiters } from "../runs/index.js";
import { ArtifactState } from "./artifact.entity.js";
import type { ArtifactStore } from "./artifact-store.js";

/** Times a whole file may fail its checksum before the artifact FAILS. @default 5 */
export const MAX_CHECKSUM_FAILURES = 5;

/**
 * What became of one chunk; `wait`: its artifact is not (yet) known or released here, try again
 * shortly (`known` false: no artifact of that path on that run, attempt and node).
 */
export type ChunkOutcome =
  | { kind: "stored"; complete: boolean }
  | { kind: "ignored"; why: string }
  | { kind: "wait"; why: string; known: boolean }
  | { kind: "refused"; problem: string }
  | { kind: "corrupt"; problem: string };

interface ArtifactRow {
  id: string;
  run_id: string;
  attempt: number;
  node_id: string;
  path: string;
  size_bytes: number | null;
  sha256: string | null;
  state: ArtifactState;
  checksum_failures: number;
}

/** The columns of an ArtifactRow, from `artifact a join run r`. */
const ARTIFACT_COLUMNS = "a.id, a.run_id, r.attempt, a.node_id, a.path, a.size_bytes, a.sha256, a.state, a.checksum_failures";

/** Chunks a file of `sizeBytes` has at `chunkBytes` each (an empty file has one, empty). */
export function chunkCount(sizeBytes: number, chunkBytes: number): number {
  return Math.max(1, Math.ceil(sizeBytes / chunkBytes));
}

async function artifactOfChunk(em: EntityManager, chunk: RunChunkEvent, lock = false): Promise<ArtifactRow | undefined> {
  const [row] = await query<ArtifactRow>(
    em,
    `select ${ARTIFACT_COLUMNS}
     from artifact a join run r on r.id = a.run_id
     where a.run_id = ? and a.path = ? and r.node_id = ? and r.attempt = ?${lock ? " for update of a" : ""}`,
    [chunk.runId, chunk.path, chunk.nodeId, chunk.attempt],
  );
  return row;
}

/** The artifact of each distinct (run, attempt, node, path) of `chunks`, by chunkKey; one statement. */
async function artifactsOfChunks(em: EntityManager, chunks: readonly RunChunkEvent[]): Promise<Map<string, ArtifactRow>> {
  const keys = new Map<string, RunChunkEvent>();
  for (const chunk of chunks) keys.set(chunkKey(chunk), chunk);
  const rows = await query<ArtifactRow & { key: string }>(
    em,
    `select x.key, ${ARTIFACT_COLUMNS}
     from jsonb_to_recordset(?::jsonb) as x(key text, run_id uuid, path text, node_id text, attempt int)
     join run r on r.id = x.run_id and r.node_id = x.node_id and r.attempt = x.attempt
     join artifact a on a.run_id = x.run_id and a.path = x.path`,
    [json([...keys].map(([key, c]) => ({ key, run_id: c.runId, path: c.path, node_id: c.nodeId, attempt: c.attempt })))],
  );
  return new Map(rows.map(({ key, ...row }) => [key, row]));
}

const chunkKey = (chunk: RunChunkEvent) => JSON.stringify([chunk.runId, chunk.attempt, chunk.nodeId, chunk.path]);

/** Asks the node for chunks of one file again (null: all of them). */
async function askAgain(em: EntityManager, row: ArtifactRow, chunks: number[] | null, changes: ChangeSet): Promise<void> {
  await enqueueRelease(em, [{ runId: row.run_id, attempt: row.attempt, nodeId: row.node_id, files: [{ path: row.path, sha256: row.sha256!, chunks }] }], changes);
}

/** What a chunk's artifact says of it before anything is written: null when it is to be staged. */
function judgeChunk(row: ArtifactRow | undefined, chunk: RunChunkEvent): ChunkOutcome | null {
  if (!row) return { kind: "wait", why: `no artifact ${chunk.path} of run ${chunk.runId}#${chunk.attempt} on node ${chunk.nodeId}`, known: false };
  switch (row.state) {
    case ArtifactState.PENDING_REVIEW:
      // A decision taken on the node may be on its way (it travels with other node events).
      return { kind: "wait", why: `artifact ${row.id} is ${row.state}, not released`, known: true };
    case ArtifactState.ON_NODE:
      return { kind: "refused", problem: `artifact ${row.id} is ON_NODE: not released` };
    case ArtifactState.REJECTED:
      return { kind: "refused", problem: `artifact ${row.id} was REJECTED: its content must not leave the node` };
    case ArtifactState.AVAILABLE:
    case ArtifactState.EXPIRED:
    case ArtifactState.FAILED:
      return { kind: "ignored", why: `artifact ${row.id} is ${row.state}` };
  }
  if (row.sha256 !== chunk.fileSha256 || row.size_bytes === null) {
    return { kind: "refused", problem: `chunk of ${chunk.path} names file sha256 ${chunk.fileSha256}, not the manifest's ${row.sha256}` };
  }
  const count = chunkCount(row.size_bytes, chunk.chunkBytes);
  if (chunk.index >= count) return { kind: "refused", problem: `chunk ${chunk.index} of ${chunk.path}: the file has ${count} chunk(s) of ${chunk.chunkBytes} bytes` };
  const expectedBytes = Math.min(chunk.chunkBytes, row.size_bytes - chunk.index * chunk.chunkBytes);
  const sha256 = createHash("sha256").update(chunk.data).digest("hex");
  if (chunk.data.length !== expectedBytes || sha256 !== chunk.sha256) {
    return { kind: "corrupt", problem: `chunk ${chunk.index} of ${chunk.path}: ${chunk.data.length} bytes with sha256 ${sha256}, expected ${expectedBytes} bytes with sha256 ${chunk.sha256}` };
  }
  return null;
}

/**
 * Handles chunks already checked as their nodes' own broker users'; a chunk's run, node and attempt
 * are its own when its artifact is found (a `wait` with `known` false: check them before waiting).
 * Chunks of one file are handled together: one statement finds every chunk's artifact, and each
 * file's chunks are staged in one go, its row written at most once and its staged chunks counted
 * once. Safe to call again with the same chunks, and for chunks in any order. One outcome per chunk.
 */
export async function receiveChunks(em: EntityManager, store: ArtifactStore, chunks: readonly RunChunkEvent[], changes: ChangeSet): Promise<ChunkOutcome[]> {
  const outcomes: ChunkOutcome[] = [];
  if (chunks.length === 0) return outcomes;
  const rows = await artifactsOfChunks(em, chunks);
  const files = new Map<string, { row: ArtifactRow; chunkBytes: number; first: number; chunks: { at: number; index: number; data: Buffer }[] }>();
  const corrupt = new Map<string, { row: ArtifactRow; indices: number[] }>();
  chunks.forEach((chunk, at) => {
    const row = rows.get(chunkKey(chunk));
    const verdict = judgeChunk(row, chunk);
    outcomes[at] = verdict ?? { kind: "stored", complete: false };
    if (verdict?.kind === "corrupt") {
      const asked = corrupt.get(row!.id) ?? { row: row!, indices: [] };
      asked.indices.push(chunk.index);
      corrupt.set(row!.id, asked);
    }
    if (verdict !== null) return;
    const key = `${row!.id}/${chunk.chunkBytes}`;
    const file = files.get(key) ?? { row: row!, chunkBytes: chunk.chunkBytes, first: at, chunks: [] };
    file.chunks.push({ at, index: chunk.index, data: chunk.data });
    files.set(key, file);
  });
  for (const { row, indices } of corrupt.values()) await askAgain(em, row, [...new Set(indices)], changes);
  for (const { row, chunkBytes, first, chunks: staging } of files.values()) {
    await store.putChunks(row.id, chunkBytes, staging);
    // Written at most once a second per file (what finds stalled transfers counts in seconds): with
    // chunks handled at once, one write each queued them all behind the row's lock and a commit each.
    await query(
      em,
      `update artifact set state = case when state = 'APPROVED' then 'TRANSFERRING' else state end, last_chunk_at = now(), transfer_asks = 0
       where id = ? and (state = 'APPROVED' or transfer_asks > 0 or last_chunk_at is null or last_chunk_at < now() - interval '1 second')`,
      [row.id],
    );
    if (row.state === ArtifactState.APPROVED) changes.outputsChanged([row.run_id]);
    const count = chunkCount(row.size_bytes!, chunkBytes);
    const staged = await store.stagedChunks(row.id, chunkBytes);
    if (staged.size < count) continue;
    // Counted for the file's first chunk of the batch: it is stored once, whatever the chunks.
    outcomes[first] = { kind: "stored", complete: await completeArtifact(em, store, chunks[first]!, count, changes) };
  }
  return outcomes;
}

/**
 * Joins and checks the file under a lock on its row, so two consumers that both saw the last chunk
 * store it once. A mismatch discards what was staged and asks for the whole file again, up to
 * MAX_CHECKSUM_FAILURES times; then the artifact FAILS.
 */
async function completeArtifact(em: EntityManager, store: ArtifactStore, chunk: RunChunkEvent, count: number, changes: ChangeSet): Promise<boolean> {
  return em.transactional(async (tx) => {
    const row = await artifactOfChunk(tx, chunk, true);
    if (!row || row.state !== ArtifactState.TRANSFERRING) return false;
    changes.outputsChanged([row.run_id]);
    const result = await store.commit(row.id, chunk.chunkBytes, count, { sizeBytes: row.size_bytes!, sha256: row.sha256! });
    if (result.ok) {
      await query(tx, `update artifact set state = 'AVAILABLE', stored_at = now() where id = ?`, [row.id]);
      await settleInputWaiters(tx, [row.run_id], changes);
      return true;
    }
    await store.discardStaged(row.id);
    const failures = row.checksum_failures + 1;
    if (failures >= MAX_CHECKSUM_FAILURES) {
      const reason = `the received file failed its checksum ${failures} times: ${result.problem}`.slice(0, 1_000);
      await query(tx, `update artifact set state = 'FAILED', reason = ?, checksum_failures = ? where id = ?`, [reason, failures, row.id]);
      await settleInputWaiters(tx, [row.run_id], changes);
      return false;
    }
    await query(tx, `update artifact set state = 'APPROVED', checksum_failures = ?, last_chunk_at = now() where id = ?`, [failures, row.id]);
    await askAgain(tx, row, null, changes);
    return false;
  });
}

/**
 * Released files their nodes can no longer send (deleted or changed after the manifest): their
 * artifacts, while still on their way (APPROVED, TRANSFERRING), become FAILED with the node's
 * reason, and what was staged is dropped. Call with events checked as their nodes' own runs;
 * returns the runs whose artifacts failed (their dependents are then settled).
 */
export async function failLostOutputs(em: EntityManager, store: ArtifactStore, events: readonly RunOutputLostEvent[]): Promise<string[]> {
  if (events.length === 0) return [];
  const failed = await query<{ id: string; run_id: string }>(
    em,
    `update artifact a set state = 'FAILED', reason = left('the node could not send it: ' || x.reason, 1000)
     from jsonb_to_recordset(?::jsonb) as x(run_id uuid, attempt int, path text, sha256 text, reason text), run r
     where a.run_id = x.run_id and a.path = x.path and a.sha256 = x.sha256 and r.id = a.run_id and r.attempt = x.attempt
       and a.state in ('APPROVED', 'TRANSFERRING')
     returning a.id, a.run_id`,
    [json(events.map((e) => ({ run_id: e.runId, attempt: e.attempt, path: e.path, sha256: e.fileSha256, reason: e.reason })))],
  );
  for (const row of failed) await store.discardStaged(row.id);
  return [...new Set(failed.map((row) => row.run_id))];
}

/**
 * The release a `review` approval sends to the node: the artifact's file, whole. Call in the
 * transaction that approves it.
 */
export async function enqueueApprovedRelease(em: EntityManager, artifact: { runId: string; nodeId: string; path: string; sha256: string | null }, changes: ChangeSet): Promise<void> {
  if (artifact.sha256 === null) return;
  const [run] = await query<{ attempt: number }>(em, `select attempt from run where id = ?`, [artifact.runId]);
  if (!run) return;
  await enqueueRelease(em, [{ runId: artifact.runId, attempt: run.attempt, nodeId: artifact.nodeId, files: [{ path: artifact.path, sha256: artifact.sha256, chunks: null }] }], changes);
}

/** Most doublings of the wait between two asks for a file that does not arrive (`stallMs` × 64 at most). */
const MAX_ASK_DOUBLINGS = 6;

/**
 * Asks the nodes again for released files that stopped arriving: artifacts APPROVED or
 * TRANSFERRING whose last chunk (or release, or ask) is older than `stallMs`, doubled for every ask
 * since the last chunk (an agent that cannot send is not flooded), on nodes that are online, naming
 * the chunks still missing. Returns how many were asked for.
 */
export async function askForStalledTransfers(em: EntityManager, store: ArtifactStore, stallMs: number, changes: ChangeSet, limit = 100): Promise<number> {
  const rows = await query<ArtifactRow>(
    em,
    `select ${ARTIFACT_COLUMNS}
     from artifact a join run r on r.id = a.run_id join node n on n.id = a.node_id
     where a.state in ('APPROVED', 'TRANSFERRING') and a.sha256 is not null and a.size_bytes is not null
       and coalesce(a.last_chunk_at, a.decided_at, a.created_at) < now() - (? * power(2, least(a.transfer_asks, ?)) * interval '1 millisecond')
       and n.connectivity = 'ONLINE'
     order by a.id limit ?`,
    [stallMs, MAX_ASK_DOUBLINGS, limit],
  );
  for (const row of rows) {
    const chunkBytes = TRANSFER_CHUNK_BYTES;
    const staged = row.state === ArtifactState.TRANSFERRING ? await store.stagedChunks(row.id, chunkBytes) : new Set<number>();
    const missing = staged.size === 0 ? null : Array.from({ length: chunkCount(row.size_bytes!, chunkBytes) }, (_, i) => i).filter((i) => !staged.has(i));
    await askAgain(em, row, missing && missing.length > 0 ? missing.slice(0, 10_000) : null, changes);
    await query(em, `update artifact set last_chunk_at = now(), transfer_asks = transfer_asks + 1 where id = ?`, [row.id]);
  }
  return rows.length;
}

/**
 * Deletes stored files older than `retentionMs` (from when they became AVAILABLE) and marks their
 * artifacts EXPIRED: the row first, so a download never finds AVAILABLE without a file. Returns how many.
 */
export async function expireArtifacts(em: EntityManager, store: ArtifactStore, retentionMs: number, changes: ChangeSet, limit = 100): Promise<number> {
  const rows = await query<{ id: string; run_id: string }>(
    em,
    `update artifact set state = 'EXPIRED' where id in (
       select id from artifact where state = 'AVAILABLE' and stored_at < now() - (? * interval '1 millisecond') order by stored_at limit ?
     ) returning id, run_id`,
    [retentionMs, limit],
  );
  changes.outputsChanged(rows.map((row) => row.run_id));
  for (const row of rows) await store.remove(row.id);
  return rows.length;
}
