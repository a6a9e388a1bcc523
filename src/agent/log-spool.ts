/**
 * A run's log spool: every line the agent numbers is appended to a JSON-lines file before it may be
 * sent, and a batch is handed to the outbox only once an fsync covers it. Files whose lines the
 * broker confirmed are deleted; what is left after a crash is replayed at the next start
 * (`log-replay.ts`). Layout: `<sandboxDir>/spool/<runId>-<attempt>/<firstSeq>.jsonl`.
 */
import fs from "node:fs";
import path from "node:path";
import type { LogLineWire, RunLogsEvent } from "../messaging/contracts.js";
import { toError } from "../shared/index.js";
import type { AgentLogger } from "./log.js";
import type { Outbox } from "./outbox.js";

/** A segment is closed and a new one begun once it holds this many bytes. @default 8 MiB */
export const SPOOL_SEGMENT_BYTES = 8 * 1024 * 1024;
/** Bytes of batches waiting for their fsync above which reading the run's output pauses. @default 16 MiB */
const SYNC_BACKLOG_LIMIT_BYTES = 16 * 1024 * 1024;

export interface RunSpool {
  /** Writes the lines to the spool file now (one write, to the page cache); never throws. */
  append(lines: readonly LogLineWire[]): void;
  /** Resolves once every line appended so far is fsynced (at once if the spool failed). */
  sync(): Promise<void>;
  /** The broker confirmed every line up to `seq`: wholly confirmed segments are deleted. */
  confirmed(seq: number): void;
  /** No line follows: once all are confirmed, the run's spool directory is removed. */
  close(): void;
}

interface Segment {
  firstSeq: number;
  lastSeq: number;
  file: string;
  fd: number | null;
  bytes: number;
  /** Written since the last fsync. */
  dirty: boolean;
  /** Its directory entry is not fsynced yet. */
  fresh: boolean;
  /** No more lines go to it. */
  full: boolean;
}

/** The directory holding the spool of one run. */
export function spoolDirOf(sandboxDir: string, runId: string, attempt: number): string {
  return path.join(sandboxDir, "spool", `${runId}-${attempt}`);
}

/** The segment file of lines from `firstSeq` on (zero-padded, so names sort in seq order). */
export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(12, "0")}.jsonl`;
}

/** Creates the spool of one run; its directory appears with the first line. */
export function createRunSpool(dir: string, deps: { log: AgentLogger; segmentBytes?: number }): RunSpool {
  const segmentBytes = deps.segmentBytes ?? SPOOL_SEGMENT_BYTES;
  const segments: Segment[] = [];
  let appendedSeq = 0;
  let durableSeq = 0;
  let confirmedSeq = 0;
  let failed = false;
  let closed = false;
  let removed = false;
  let syncing = false;
  let waiters: { seq: number; resolve: () => void }[] = [];
  /** The run's directory in spool/ is new and its entry not yet fsynced. */
  let dirFresh = false;

  function fail(err: unknown, what: string): void {
    if (!failed) deps.log.error(`log spool ${dir}: cannot ${what} (${toError(err).message}); this run's lines are sent without being spooled`);
    failed = true;
    durableSeq = appendedSeq;
    waiters = wakeAll(waiters);
  }

  function current(firstSeq: number): Segment {
    const last = segments.at(-1);
    if (last && !last.full) return last;
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      dirFresh = true;
    }
    const file = path.join(dir, segmentName(firstSeq));
    const segment: Segment = { firstSeq, lastSeq: firstSeq - 1, file, fd: fs.openSync(file, "a", 0o600), bytes: 0, dirty: false, fresh: true, full: false };
    segments.push(segment);
    return segment;
  }

  // Group commit: every sync() waiting while an fsync runs shares the next one.
  async function syncLoop(): Promise<void> {
    syncing = true;
    while (waiters.length > 0 && !failed) {
      const target = appendedSeq;
      const pending = segments.filter((s) => s.fd !== null && (s.dirty || s.fresh));
      try {
        for (const s of pending) s.dirty = false;
        // The files, a new file's directory entry, and that of the run's directory in spool/ for
        // its first one: all at once (none depends on another), done before any line is sent.
        await Promise.all([
          ...pending.map((s) => fdatasync(s.fd!)),
          ...(pending.some((s) => s.fresh) ? [syncDir(dir)] : []),
          ...(dirFresh ? [syncDir(path.dirname(dir))] : []),
        ]);
        dirFresh = false;
        for (const s of pending) s.fresh = false;
      } catch (err) {
        fail(err, "fsync");
        break;
      }
      durableSeq = target;
      const ready = waiters.filter((w) => w.seq <= durableSeq);
      waiters = waiters.filter((w) => w.seq > durableSeq);
      for (const w of ready) w.resolve();
    }
    syncing = false;
    closeFullSegments();
    removeIfDone();
  }

  /** Closes full segments that are on disk; never while an fsync may be using their descriptor. */
  function closeFullSegments(): void {
    if (syncing) return;
    for (const s of segments) if (s.full && !s.dirty && !s.fresh) closeSegment(s);
  }

  function closeSegment(s: Segment): void {
    if (s.fd === null) return;
    try {
      fs.closeSync(s.fd);
    } catch {
      // closing a file already synced cannot lose anything
    }
    s.fd = null;
  }

  function removeIfDone(): void {
    if (removed) return;
    // Segments wholly confirmed go first; the last one stays open for more lines.
    while (segments.length > 0 && segments[0]!.full && segments[0]!.fd === null && segments[0]!.lastSeq <= confirmedSeq) {
      const s = segments.shift()!;
      fs.promises.unlink(s.file).catch(() => undefined);
    }
    if (!closed || syncing || confirmedSeq < appendedSeq) return;
    removed = true;
    for (const s of segments) closeSegment(s);
    fs.promises.rm(dir, { recursive: true, force: true }).catch((err: unknown) => deps.log.warn(`log spool ${dir}: cannot remove it: ${toError(err).message}`));
  }

  function sync(): Promise<void> {
    if (durableSeq >= appendedSeq) return Promise.resolve();
    return new Promise<void>((resolve) => {
      waiters.push({ seq: appendedSeq, resolve });
      if (!syncing) void syncLoop();
    });
  }

  return {
    sync,
    append(lines) {
      if (lines.length === 0 || closed) return;
      const firstSeq = lines[0]!.seq;
      appendedSeq = lines.at(-1)!.seq;
      if (failed) {
        durableSeq = appendedSeq;
        return;
      }
      try {
        const segment = current(firstSeq);
        const text = lines.map((line) => `${JSON.stringify(line)}\n`).join("");
        // Synchronous on purpose: once a chunk of output is read, its lines are in the file before
        // anything else runs, so a crash of the agent (not of the host) loses none of them.
        const bytes = fs.writeSync(segment.fd!, text);
        segment.bytes += bytes;
        segment.lastSeq = appendedSeq;
        segment.dirty = true;
        if (segment.bytes >= segmentBytes) segment.full = true;
      } catch (err) {
        fail(err, "write");
      }
    },
    confirmed(seq) {
      confirmedSeq = Math.max(confirmedSeq, seq);
      removeIfDone();
    },
    close() {
      if (closed) return;
      closed = true;
      const last = segments.at(-1);
      if (last) last.full = true;
      // Normally every line was flushed (and so synced) before; if not, sync it before closing.
      if (durableSeq < appendedSeq) void sync();
      closeFullSegments();
      removeIfDone();
    },
  };
}

/** What a run's log batcher sends through: spool fsync first, then the outbox; bounded in memory. */
export interface LogSink {
  send(event: RunLogsEvent): void;
  /** Resolves once every batch sent so far is in the outbox. */
  handedOver(): Promise<void>;
  /** True when every batch sent so far is confirmed by the broker (or given up on). */
  idle(): boolean;
  /** Calls `listener` each time the sink becomes idle; returns the function that stops it. */
  onIdle(listener: () => void): () => void;
  /** True while batches waiting for their fsync, or the outbox, hold more than their limit. */
  congested(): boolean;
  whenUncongested(): Promise<void>;
}

/** Hands each batch to the outbox once the spool made it durable, in order, and reports confirmations back. */
export function createLogSink(spool: RunSpool, outbox: Outbox): LogSink {
  let backlogBytes = 0;
  let roomWaiters: (() => void)[] = [];
  let chain: Promise<void> = Promise.resolve();
  let unconfirmed = 0;
  /** Batches handed to the outbox, in seq order, until they and every one before them are confirmed. */
  const awaiting: { lastSeq: number; confirmed: boolean }[] = [];
  // Several batches of a run may be in flight and confirmed in any order: the spool learns only
  // of a seq below which every batch is confirmed, so no file goes while a line of it may be lost.
  const confirm = (batch: { confirmed: boolean }) => {
    batch.confirmed = true;
    let upTo = 0;
    while (awaiting[0]?.confirmed) upTo = awaiting.shift()!.lastSeq;
    if (upTo > 0) spool.confirmed(upTo);
  };
  const idleListeners = new Set<() => void>();
  const settled = () => {
    unconfirmed -= 1;
    if (unconfirmed === 0) for (const listener of [...idleListeners]) listener();
  };
  return {
    send(event) {
      const bytes = event.lines.reduce((sum, line) => sum + line.text.length + 80, 200);
      const lastSeq = event.lines.at(-1)?.seq ?? 0;
      backlogBytes += bytes;
      unconfirmed += 1;
      const synced = spool.sync();
      // Chained so that batches reach the outbox in seq order whatever the order of resolution.
      chain = chain
        .then(() => synced)
        .then(() => {
          backlogBytes -= bytes;
          if (backlogBytes <= SYNC_BACKLOG_LIMIT_BYTES) roomWaiters = wakeAll(roomWaiters);
          const batch = { lastSeq, confirmed: false };
          awaiting.push(batch);
          void outbox.send(event).then((sent) => {
            // One the outbox gave up on stays unconfirmed, and so does the spool from it on (replayed at the next start).
            if (sent) confirm(batch);
            settled();
          });
        });
    },
    handedOver: () => chain,
    idle: () => unconfirmed === 0,
    onIdle(listener) {
      idleListeners.add(listener);
      return () => idleListeners.delete(listener);
    },
    congested: () => backlogBytes > SYNC_BACKLOG_LIMIT_BYTES || outbox.congested(),
    async whenUncongested() {
      while (backlogBytes > SYNC_BACKLOG_LIMIT_BYTES) await new Promise<void>((resolve) => roomWaiters.push(resolve));
      await outbox.whenUncongested();
    },
  };
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** Makes a new file's directory entry durable. */
async function syncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function wakeAll(waiters: { resolve: () => void }[] | (() => void)[]): never[] {
  for (const w of waiters) (typeof w === "function" ? w : w.resolve)();
  return [];
}
