/**
 * Sends released output files to the orchestrator in `run.chunk` events, each with its sha256 and
 * the file's, published with confirms through the outbox. What may leave is decided here, from the
 * journal only: under `auto` every listed file of a run that SUCCEEDED; under `review` the files a
 * signed `run.release` named; under any policy the files the node's operator approved on the node;
 * and never a file the node's operator rejected. Under `local` a `run.release` releases nothing: it
 * can only ask again for chunks of a file approved on the node. The journal records, per file, the
 * chunks the broker confirmed, so a restarted agent resumes where it was; duplicates are harmless
 * (the orchestrator stores each chunk once).
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { TRANSFER_CHUNK_BYTES, WIRE_VERSION, type ManifestEntry, type RunChunkEvent, type RunRelease, type RunStateEvent } from "../messaging/contracts.js";
import { errorCode, toError } from "../shared/index.js";
import type { Journal, JournalRecord } from "./journal.js";
import type { AgentLogger } from "./log.js";
import type { Outbox } from "./outbox.js";

export interface TransferSettings {
  nodeId: string;
  sandboxDir: string;
  /** @default TRANSFER_CHUNK_BYTES */
  chunkBytes?: number;
  /** Chunks of one file awaiting their confirm at once. @default 8 */
  windowSize?: number;
  /** Confirmed chunks between two progress entries in the journal. @default 16 // 4 MiB */
  progressEvery?: number;
}

export interface Transfers {
  /** Starts sending what the journal says is released and not sent (after a restart). */
  resume(): void;
  /** A run's terminal state was reported: under `auto`, its files leave now. */
  onReported(terminal: RunStateEvent): void;
  /** The node's operator decided on the node: approved files leave now. */
  onDecided(runId: string, attempt: number): void;
  /** A verified `run.release` from the orchestrator; resolves once what it releases is journaled. */
  onRelease(message: RunRelease): Promise<void>;
  stop(): Promise<void>;
}

interface Job {
  runId: string;
  attempt: number;
  file: ManifestEntry;
  /** Chunks to send; null: the whole file. */
  chunks: number[] | null;
  /** Start after the chunks the journal says were confirmed (a restart), rather than from the first (the orchestrator asked). */
  resume: boolean;
}

/** The file changed or vanished since its manifest listed it: it can never be sent as listed. */
class OutputGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutputGoneError";
  }
}

/** The files of a journaled run that may leave the node now, by path. */
export function releasedFiles(record: JournalRecord): ManifestEntry[] {
  const manifest = record.terminal?.outputs;
  if (!manifest) return [];
  const decided = new Map<string, "APPROVE" | "REJECT">();
  for (const d of record.decisions) for (const item of d.event.decisions) if (!decided.has(item.path)) decided.set(item.path, item.decision);
  return manifest.files.filter((file) => {
    if (file.refused !== null || file.sha256 === null || file.sizeBytes === null) return false;
    const onNode = decided.get(file.path);
    if (onNode === "REJECT") return false;
    if (onNode === "APPROVE") return true;
    if (manifest.policy === "auto") return record.terminal?.state === "SUCCEEDED";
    if (manifest.policy === "review") return record.transfers[file.path]?.releasedByOrchestrator === true;
    return false;
  });
}

export function createTransfers(settings: TransferSettings, deps: { journal: Journal; outbox: Outbox; log: AgentLogger }): Transfers {
  const chunkBytes = settings.chunkBytes ?? TRANSFER_CHUNK_BYTES;
  const windowSize = settings.windowSize ?? 8;
  const progressEvery = settings.progressEvery ?? 16;
  const queue: Job[] = [];
  const queued = new Set<string>();
  let working: Promise<void> | null = null;
  let stopped = false;

  const keyOf = (job: Pick<Job, "runId" | "attempt"> & { path: string }) => `${job.runId}:${job.attempt}:${job.path}`;

  function enqueue(job: Job): void {
    if (stopped) return;
    const key = keyOf({ ...job, path: job.file.path });
    // One resuming job per file at a time; what the orchestrator asks for always queues.
    if (job.resume) {
      if (queued.has(key)) return;
      queued.add(key);
    }
    queue.push(job);
    working ??= work().finally(() => (working = null));
  }

  function enqueueUnsent(record: JournalRecord): void {
    for (const file of releasedFiles(record)) {
      if (!record.transfers[file.path]?.sent) enqueue({ runId: record.runId, attempt: record.attempt, file, chunks: null, resume: true });
    }
  }

  async function work(): Promise<void> {
    while (queue.length > 0 && !stopped) {
      const job = queue.shift()!;
      try {
        await send(job);
      } catch (err) {
        if (err instanceof OutputGoneError) await reportGone(job, err.message);
        else deps.log.error(`run ${job.runId}#${job.attempt}: cannot send output ${job.file.path}: ${toError(err).message}`);
      } finally {
        if (job.resume) queued.delete(keyOf({ ...job, path: job.file.path }));
      }
    }
  }

  /** The file cannot leave any more: the journal settles it (no resume) and the orchestrator hears why. */
  async function reportGone(job: Job, reason: string): Promise<void> {
    const { runId, attempt, file } = job;
    deps.log.warn(`run ${runId}#${attempt}: output ${file.path} cannot be sent: ${reason}`);
    await deps.journal.append({ event: "transfer-sent", runId, attempt, at: new Date().toISOString(), path: file.path, failed: reason }).catch(() => undefined);
    void deps.outbox.send({ type: "run.output-lost", v: WIRE_VERSION, nodeId: settings.nodeId, runId, attempt, at: new Date().toISOString(), path: file.path, fileSha256: file.sha256!, reason: reason.slice(0, 1_000) });
  }

  async function send(job: Job): Promise<void> {
    const { runId, attempt, file } = job;
    const runDir = path.join(settings.sandboxDir, "runs", `${runId}-${attempt}`);
    const handle = await fs.open(path.join(runDir, file.path), constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: unknown) => {
      const code = errorCode(err);
      if (code === "ENOENT" || code === "ELOOP") throw new OutputGoneError(code === "ENOENT" ? "it was deleted on the node after its manifest listed it" : "it became a symbolic link after its manifest listed it");
      throw err;
    });
    try {
      const stat = await handle.stat();
      if (!stat.isFile() || stat.size !== file.sizeBytes) throw new OutputGoneError(`it changed on the node after its manifest listed it (${stat.size} bytes, listed with ${file.sizeBytes})`);
      const count = Math.max(1, Math.ceil(stat.size / chunkBytes));
      const from = job.resume ? Math.min(deps.journal.get(runId, attempt)?.transfers[file.path]?.sentChunks ?? 0, count) : 0;
      const indices = job.chunks ?? Array.from({ length: count - from }, (_, i) => from + i);
      if (job.chunks === null) deps.log.info(`run ${runId}#${attempt}: sending output ${file.path} (${stat.size} bytes, ${count} chunk(s)${from > 0 ? `, from chunk ${from}` : ""})`);
      const confirmed = new Set<number>();
      let contiguous = from;
      let journaled = from;
      const inflight = new Set<Promise<void>>();
      const outcome: { failed: Error | null } = { failed: null };
      for (const index of indices.filter((i) => i < count)) {
        if (stopped || outcome.failed) break;
        while (inflight.size >= windowSize) await Promise.race(inflight);
        await deps.outbox.whenUncongested();
        const event = await readChunk(handle, { nodeId: settings.nodeId, runId, attempt, file, index, chunkBytes });
        const sending: Promise<void> = deps.outbox.send(event).then(async (ok) => {
          inflight.delete(sending);
          if (!ok) {
            outcome.failed ??= new Error("the outbox stopped before the broker confirmed a chunk");
            return;
          }
          confirmed.add(index);
          if (job.chunks !== null) return;
          while (confirmed.has(contiguous)) contiguous += 1;
          if (contiguous - journaled >= progressEvery && contiguous < count) {
            journaled = contiguous;
            await deps.journal.append({ event: "transfer-progress", runId, attempt, at: new Date().toISOString(), path: file.path, sentChunks: contiguous }).catch(() => undefined);
          }
        });
        inflight.add(sending);
      }
      await Promise.all(inflight);
      if (outcome.failed) throw outcome.failed;
      if (stopped) return;
      if (job.chunks === null && contiguous >= count) {
        await deps.journal.append({ event: "transfer-sent", runId, attempt, at: new Date().toISOString(), path: file.path });
        deps.log.info(`run ${runId}#${attempt}: output ${file.path} sent`);
      } else if (job.chunks !== null) {
        deps.log.info(`run ${runId}#${attempt}: sent ${indices.length} chunk(s) of output ${file.path} again, as the orchestrator asked`);
      }
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  async function onRelease(message: RunRelease): Promise<void> {
    const record = deps.journal.get(message.runId, message.attempt);
    const tag = `run ${message.runId}#${message.attempt}`;
    const manifest = record?.terminal?.outputs;
    if (!record || !manifest) return deps.log.warn(`${tag}: the orchestrator released outputs of a run this node has no manifest of; ignored`);
    for (const asked of message.files) {
      const file = manifest.files.find((f) => f.path === asked.path && f.refused === null);
      if (!file || file.sha256 !== asked.sha256) {
        deps.log.warn(`${tag}: the orchestrator released ${asked.path}, which the manifest does not list with that sha256; ignored`);
        continue;
      }
      if (manifest.policy === "review" && !record.transfers[file.path]?.releasedByOrchestrator) {
        await deps.journal.append({ event: "transfer-released", runId: record.runId, attempt: record.attempt, at: new Date().toISOString(), path: file.path });
      }
      const current = deps.journal.get(record.runId, record.attempt)!;
      if (!releasedFiles(current).some((f) => f.path === file.path)) {
        deps.log.warn(`${tag}: the orchestrator asked for ${file.path}, which is not released on this node (outputs: ${manifest.policy}); not sent`);
        continue;
      }
      enqueue({ runId: record.runId, attempt: record.attempt, file, chunks: asked.chunks, resume: false });
    }
  }

  return {
    resume() {
      for (const record of deps.journal.records()) enqueueUnsent(record);
    },
    onReported(terminal) {
      const record = deps.journal.get(terminal.runId, terminal.attempt);
      if (record) enqueueUnsent(record);
    },
    onDecided(runId, attempt) {
      const record = deps.journal.get(runId, attempt);
      if (record) enqueueUnsent(record);
    },
    onRelease,
    async stop() {
      stopped = true;
      queue.length = 0;
      await working;
    },
  };
}

async function readChunk(
  handle: fs.FileHandle,
  at: { nodeId: string; runId: string; attempt: number; file: ManifestEntry; index: number; chunkBytes: number },
): Promise<RunChunkEvent> {
  const start = at.index * at.chunkBytes;
  const length = Math.max(0, Math.min(at.chunkBytes, at.file.sizeBytes! - start));
  // Not zeroed: every byte is read into it below, or the file ended early and it is thrown away.
  const buffer = Buffer.allocUnsafe(length);
  let read = 0;
  while (read < length) {
    const { bytesRead } = await handle.read(buffer, read, length - read, start + read);
    if (bytesRead === 0) throw new OutputGoneError(`it ended at byte ${start + read}, before the ${at.file.sizeBytes} bytes it was listed with`);
    read += bytesRead;
  }
  return {
    type: "run.chunk",
    v: WIRE_VERSION,
    nodeId: at.nodeId,
    runId: at.runId,
    attempt: at.attempt,
    path: at.file.path,
    fileSha256: at.file.sha256!,
    index: at.index,
    chunkBytes: at.chunkBytes,
    sha256: createHash("sha256").update(buffer).digest("hex"),
    data: buffer,
  };
}
