/**
 * The agent's local, durable memory of runs: an append-only JSON-lines file, fsynced before an
 * append resolves. It decides duplicates, remembers early cancels and finds runs a previous agent
 * process left behind.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { RunOutputsEvent, RunStateEvent } from "../messaging/contracts.js";
import { errorCode, toError } from "../shared/index.js";
import type { AgentLogger } from "./log.js";

export type JournalEntry =
  | { event: "accepted"; runId: string; attempt: number; at: string }
  | { event: "started"; runId: string; attempt: number; at: string; pid: number; startTicks: number | null }
  | { event: "finished"; runId: string; attempt: number; at: string; terminal: RunStateEvent }
  | { event: "reported"; runId: string; attempt: number; at: string }
  | { event: "cancelled"; runId: string; attempt: number; at: string; reason: string }
  | { event: "outputs-decided"; runId: string; attempt: number; at: string; decision: RunOutputsEvent }
  | { event: "outputs-reported"; runId: string; attempt: number; at: string; requestId: string }
  | { event: "transfer-released"; runId: string; attempt: number; at: string; path: string }
  | { event: "transfer-progress"; runId: string; attempt: number; at: string; path: string; sentChunks: number }
  | { event: "transfer-sent"; runId: string; attempt: number; at: string; path: string; failed?: string };

/** What the journal knows of sending one output file: released by the orchestrator (`review`), chunks confirmed, all sent. */
export interface TransferRecord {
  /** The orchestrator's `run.release` named it (what releases a file under `review`). */
  releasedByOrchestrator: boolean;
  /** Chunks `0…sentChunks-1` were confirmed by the broker. */
  sentChunks: number;
  /** Every chunk was confirmed by the broker. */
  sent: boolean;
}

/** What the journal knows of one (runId, attempt). */
export interface JournalRecord {
  runId: string;
  attempt: number;
  accepted: boolean;
  pid: number | null;
  /** Start time of the run's main process in clock ticks since boot, to detect pid reuse. */
  startTicks: number | null;
  /** The terminal event, once the run finished. */
  terminal: RunStateEvent | null;
  /** True once the broker confirmed the terminal event. */
  reported: boolean;
  cancelReason: string | null;
  /** Release decisions taken on the node (`fem-agent outputs`), in order, and whether the broker confirmed each. */
  decisions: { event: RunOutputsEvent; reported: boolean }[];
  /** Output files being sent or sent, by path. */
  transfers: Record<string, TransferRecord>;
  lastAt: string;
}

export interface Journal {
  get(runId: string, attempt: number): JournalRecord | undefined;
  records(): JournalRecord[];
  /** Records the entry in memory at once and resolves when it is on disk. */
  append(entry: JournalEntry): Promise<void>;
  stop(): Promise<void>;
}

/** Records of reported runs older than this are dropped when the journal is compacted. */
const RETENTION_MS = 30 * 24 * 3600 * 1000;

/** The journal's file in the agent's sandbox directory. */
export function journalPath(dir: string): string {
  return path.join(dir, "journal.jsonl");
}

/**
 * The records of the journal in `dir` as they are on disk, read without opening it for writing,
 * for commands run beside a running agent (`fem-agent outputs`). Empty when there is no journal.
 */
export async function readJournalRecords(dir: string, log: AgentLogger): Promise<JournalRecord[]> {
  return [...(await load(journalPath(dir), log)).records.values()];
}

/** Opens (creating if needed) `<dir>/journal.jsonl`, compacting it when it has grown. */
export async function openJournal(dir: string, deps: { log: AgentLogger; now?: () => Date }): Promise<Journal> {
  const filePath = journalPath(dir);
  await fs.mkdir(dir, { recursive: true });
  const { records, lineCount } = await load(filePath, deps.log);
  if (lineCount > 2 * records.size + 1_000) await compact(filePath, records, (deps.now ?? (() => new Date()))());
  const handle = await fs.open(filePath, "a");

  let pending: { line: string; resolve: () => void; reject: (err: Error) => void }[] = [];
  let writing: Promise<void> | null = null;
  let stopped = false;

  // Group commit: every append waiting while a write is in flight shares the next write and fsync.
  async function writeLoop(): Promise<void> {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        await handle.write(batch.map((p) => p.line).join(""));
        await handle.datasync();
        for (const p of batch) p.resolve();
      } catch (err) {
        const error = new Error(`cannot write the journal ${filePath}`, { cause: toError(err) });
        for (const p of batch) p.reject(error);
      }
    }
    writing = null;
  }

  return {
    get: (runId, attempt) => records.get(key(runId, attempt)),
    records: () => [...records.values()],
    append(entry) {
      if (stopped) return Promise.reject(new Error("the journal is closed"));
      const k = key(entry.runId, entry.attempt);
      const previous = records.get(k);
      const snapshot = previous ? { ...previous } : undefined;
      apply(records, entry);
      return new Promise<void>((resolve, reject) => {
        const undo = (err: Error) => {
          // What is not on disk must not be remembered: a redelivery would pass for a duplicate.
          if (snapshot) records.set(k, snapshot);
          else records.delete(k);
          reject(err);
        };
        pending.push({ line: `${JSON.stringify(entry)}\n`, resolve, reject: undo });
        writing ??= writeLoop();
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await writing;
      await handle.close().catch(() => undefined);
    },
  };
}

/** Runs that ended whose terminal report the broker has not confirmed (not journaled `reported`). */
export function unreportedRuns(journal: Journal): { runId: string; attempt: number }[] {
  return journal
    .records()
    .filter((r) => r.terminal !== null && !r.reported)
    .map((r) => ({ runId: r.runId, attempt: r.attempt }));
}

function key(runId: string, attempt: number): string {
  return `${runId}:${attempt}`;
}

async function load(filePath: string, log: AgentLogger): Promise<{ records: Map<string, JournalRecord>; lineCount: number }> {
  const records = new Map<string, JournalRecord>();
  let text = "";
  try {
    text = await fs.readFile(filePath, "utf8");
  } catch (err) {
    if (errorCode(err) !== "ENOENT") throw new Error(`cannot read the journal ${filePath}`, { cause: toError(err) });
  }
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  let skipped = 0;
  for (const line of lines) {
    try {
      const entry = JSON.parse(line) as JournalEntry;
      if (typeof entry?.runId !== "string" || typeof entry.attempt !== "number") throw new Error("not an entry");
      apply(records, entry);
    } catch {
      // A crash during an append can leave a torn last line; nothing after it was acknowledged.
      skipped += 1;
    }
  }
  if (skipped > 0) log.warn(`journal ${filePath}: skipped ${skipped} unreadable line(s)`);
  return { records, lineCount: lines.length };
}

function apply(records: Map<string, JournalRecord>, entry: JournalEntry): void {
  const k = key(entry.runId, entry.attempt);
  const record = records.get(k) ?? {
    runId: entry.runId,
    attempt: entry.attempt,
    accepted: false,
    pid: null,
    startTicks: null,
    terminal: null,
    reported: false,
    cancelReason: null,
    decisions: [],
    transfers: {},
    lastAt: entry.at,
  };
  record.lastAt = entry.at;
  switch (entry.event) {
    case "accepted":
      record.accepted = true;
      break;
    case "started":
      record.pid = entry.pid;
      record.startTicks = entry.startTicks;
      break;
    case "finished":
      record.terminal = entry.terminal;
      break;
    case "reported":
      record.reported = true;
      break;
    case "cancelled":
      record.cancelReason = entry.reason;
      break;
    case "outputs-decided":
      record.decisions = [...record.decisions, { event: entry.decision, reported: false }];
      break;
    case "outputs-reported":
      record.decisions = record.decisions.map((d) => (d.event.requestId === entry.requestId ? { ...d, reported: true } : d));
      break;
    case "transfer-released":
    case "transfer-progress":
    case "transfer-sent": {
      const current = record.transfers[entry.path] ?? { releasedByOrchestrator: false, sentChunks: 0, sent: false };
      const next = { ...current };
      if (entry.event === "transfer-released") next.releasedByOrchestrator = true;
      if (entry.event === "transfer-progress") next.sentChunks = Math.max(current.sentChunks, entry.sentChunks);
      if (entry.event === "transfer-sent") next.sent = true;
      record.transfers = { ...record.transfers, [entry.path]: next };
      break;
    }
  }
  records.set(k, record);
}

/** Rewrites the journal with the fewest entries that rebuild the same records, atomically. */
async function compact(filePath: string, records: Map<string, JournalRecord>, now: Date): Promise<void> {
  const lines: string[] = [];
  for (const [k, r] of records) {
    const transfersSettled = Object.values(r.transfers).every((t) => t.sent || !t.releasedByOrchestrator);
    if (r.reported && r.decisions.every((d) => d.reported) && transfersSettled && now.getTime() - Date.parse(r.lastAt) > RETENTION_MS) {
      records.delete(k);
      continue;
    }
    const base = { runId: r.runId, attempt: r.attempt, at: r.lastAt };
    const entries: JournalEntry[] = [];
    if (r.reported) {
      // A reported run only needs to be known, so that a redelivery is recognised as a duplicate;
      // and, when it left outputs, its manifest and the decisions on them (`fem-agent outputs`).
      if (r.terminal?.outputs) entries.push({ ...base, event: "finished", terminal: r.terminal });
      entries.push({ ...base, event: "reported" });
    } else {
      if (r.cancelReason !== null) entries.push({ ...base, event: "cancelled", reason: r.cancelReason });
      if (r.accepted) entries.push({ ...base, event: "accepted" });
      if (r.pid !== null) entries.push({ ...base, event: "started", pid: r.pid, startTicks: r.startTicks });
      if (r.terminal) entries.push({ ...base, event: "finished", terminal: r.terminal });
    }
    for (const d of r.decisions) {
      entries.push({ ...base, event: "outputs-decided", decision: d.event });
      if (d.reported) entries.push({ ...base, event: "outputs-reported", requestId: d.event.requestId });
    }
    for (const [file, t] of Object.entries(r.transfers)) {
      if (t.releasedByOrchestrator) entries.push({ ...base, event: "transfer-released", path: file });
      if (t.sentChunks > 0) entries.push({ ...base, event: "transfer-progress", path: file, sentChunks: t.sentChunks });
      if (t.sent) entries.push({ ...base, event: "transfer-sent", path: file });
    }
    for (const entry of entries) lines.push(`${JSON.stringify(entry)}\n`);
  }
  const tmpPath = `${filePath}.compacting`;
  const tmp = await fs.open(tmpPath, "w");
  try {
    await tmp.write(lines.join(""));
    await tmp.sync();
  } finally {
    await tmp.close();
  }
  await fs.rename(tmpPath, filePath);
  const dir = await fs.open(path.dirname(filePath), "r");
  await dir.sync().finally(() => dir.close());
}
