/**
 * Follows the log lines of one or more runs: replays stored lines after a cursor, then continues
 * with live lines, with no gap and no duplicate at the seam. It listens before it reads, keeps a
 * bounded buffer of live lines, and goes back to the database whenever it sees a gap or its buffer
 * overflowed, so a slow reader costs bounded memory and still gets every line in order.
 */
import type { LogChange, LogStream } from "../kernel/index.js";
import type { PubSub } from "../live/pubsub.js";
import type { LogLine } from "./log-line.entity.js";

export interface LogBatchPayload {
  runId: string;
  lines: LogLine[];
}

export interface FollowOptions {
  topic: string;
  pubsub: PubSub;
  /** Runs to replay from the start (cursor per run). */
  cursors: Map<string, number>;
  /** At most `limit` lines, stopping once their text reached `maxChars` (see `readLogs`). */
  read(runId: string, afterSeq: number, limit: number, maxChars: number): Promise<LogLine[]>;
  /** Lines per batch read from the database. @default 1_000 */
  pageLines?: number;
  /** Characters of text per batch read from the database. @default 1_048_576 */
  pageChars?: number;
  /** Live lines buffered per follower before it falls back to the database. @default 10_000 */
  bufferLines?: number;
  /** Characters of live text buffered per follower before it falls back to the database. @default 4_194_304 */
  bufferChars?: number;
  /** Re-check interval while a gap is open (a line published before a broker outage). @default 1_000 */
  gapRecheckMs?: number;
}

interface Cursor {
  lastSeq: number;
  buffer: Map<number, LogLine>;
  /**
   * Whole live batches in the buffer, by their first seq: handed out as they are, so that every
   * follower of a run delivers the same object (and the GraphQL execution of it is shared).
   */
  whole: Map<number, LogBatchPayload>;
  /** The database may hold lines this follower has not delivered. */
  needsRead: boolean;
}

interface SharedBatch {
  payload: LogBatchPayload;
  /** Its seqs go up by one. */
  contiguous: boolean;
}

/** One batch per announced change, built once for every follower (pubsub hands each the same object). */
const sharedBatches = new WeakMap<LogChange, SharedBatch>();

function sharedBatchOf(change: LogChange): SharedBatch {
  let shared = sharedBatches.get(change);
  if (!shared) {
    const lines = change.lines.map((line): LogLine => ({ runId: change.runId, seq: line.seq, stream: line.stream as LogStream, at: new Date(line.at), text: line.text }));
    const contiguous = lines.every((line, i) => i === 0 || line.seq === lines[i - 1]!.seq + 1);
    sharedBatches.set(change, (shared = { payload: { runId: change.runId, lines }, contiguous }));
  }
  return shared;
}

export function followLogs(options: FollowOptions): AsyncIterableIterator<LogBatchPayload> {
  const pageLines = options.pageLines ?? 1_000;
  const pageChars = options.pageChars ?? 1_048_576;
  const bufferLines = options.bufferLines ?? 10_000;
  const bufferChars = options.bufferChars ?? 4_194_304;
  const gapRecheckMs = options.gapRecheckMs ?? 1_000;
  const cursors = new Map<string, Cursor>();
  for (const [runId, afterSeq] of options.cursors) cursors.set(runId, { lastSeq: afterSeq, buffer: new Map(), whole: new Map(), needsRead: true });
  // Lines and characters held in every cursor's buffer: both are bounded, whatever the lines' length.
  let buffered = 0;
  let bufferedChars = 0;
  let done = false;
  let wake: (() => void) | null = null;

  const unlisten = options.pubsub.listen(options.topic, (payload) => {
    const change = payload as LogChange;
    let cursor = cursors.get(change.runId);
    if (!cursor) cursors.set(change.runId, (cursor = { lastSeq: 0, buffer: new Map(), whole: new Map(), needsRead: true }));
    const shared = sharedBatchOf(change);
    const lines = shared.payload.lines;
    // Wholly new and gap-free: it may go out as it is once the lines before it went.
    const whole = shared.contiguous && lines.length > 0 && lines[0]!.seq > cursor.lastSeq && !lines.some((line) => cursor.buffer.has(line.seq));
    let added = 0;
    for (const line of lines) {
      if (line.seq <= cursor.lastSeq || cursor.buffer.has(line.seq)) continue;
      if (buffered >= bufferLines || bufferedChars + line.text.length > bufferChars) {
        // Over budget: forget live lines; the database has them.
        for (const c of cursors.values()) c.needsRead = c.needsRead || c.buffer.size > 0;
        for (const c of cursors.values()) {
          c.buffer.clear();
          c.whole.clear();
        }
        buffered = 0;
        bufferedChars = 0;
        cursor.needsRead = true;
        added = -1;
        break;
      }
      cursor.buffer.set(line.seq, line);
      buffered += 1;
      bufferedChars += line.text.length;
      added += 1;
    }
    if (whole && added === lines.length) cursor.whole.set(lines[0]!.seq, shared.payload);
    wake?.();
  });

  function take(cursor: Cursor, line: LogLine): void {
    cursor.buffer.delete(line.seq);
    buffered -= 1;
    bufferedChars -= line.text.length;
    cursor.lastSeq = line.seq;
  }

  function takeContiguous(runId: string, cursor: Cursor): LogBatchPayload | null {
    const whole = cursor.whole.get(cursor.lastSeq + 1);
    if (whole) {
      cursor.whole.delete(cursor.lastSeq + 1);
      // Whole while every line of it is still buffered (nothing took part of it since).
      if (whole.lines.every((line) => cursor.buffer.get(line.seq) === line)) {
        for (const line of whole.lines) take(cursor, line);
        return whole;
      }
    }
    const lines: LogLine[] = [];
    while (lines.length < pageLines) {
      const line = cursor.buffer.get(cursor.lastSeq + 1);
      if (!line) break;
      // A whole batch starts here: it goes out next, as it is.
      if (lines.length > 0 && cursor.whole.has(line.seq)) break;
      take(cursor, line);
      lines.push(line);
    }
    return lines.length > 0 ? { runId, lines } : null;
  }

  function accept(runId: string, cursor: Cursor, stored: LogLine[]): LogBatchPayload | null {
    const lines: LogLine[] = [];
    for (const line of stored) {
      if (line.seq !== cursor.lastSeq + 1) break;
      cursor.lastSeq = line.seq;
      lines.push(line);
    }
    for (const [seq, line] of [...cursor.buffer]) {
      if (seq <= cursor.lastSeq) {
        cursor.buffer.delete(seq);
        buffered -= 1;
        bufferedChars -= line.text.length;
      }
    }
    for (const seq of [...cursor.whole.keys()]) if (seq <= cursor.lastSeq) cursor.whole.delete(seq);
    return lines.length > 0 ? { runId, lines } : null;
  }

  async function next(): Promise<IteratorResult<LogBatchPayload>> {
    while (!done) {
      for (const [runId, cursor] of cursors) {
        const live = takeContiguous(runId, cursor);
        if (live) return { value: live, done: false };
        if (!cursor.needsRead && cursor.buffer.size === 0) continue;
        cursor.needsRead = false;
        const stored = await options.read(runId, cursor.lastSeq, pageLines, pageChars);
        if (done) break;
        const batch = accept(runId, cursor, stored);
        if (batch) {
          // A full page (by lines or by text) means more may be stored.
          cursor.needsRead = stored.length >= pageLines || stored.reduce((chars, line) => chars + line.text.length, 0) >= pageChars;
          return { value: batch, done: false };
        }
      }
      if (done) break;
      const gapOpen = [...cursors.values()].some((c) => c.buffer.size > 0);
      await new Promise<void>((resolve) => {
        const timer = gapOpen ? setTimeout(resolve, gapRecheckMs) : null;
        wake = () => {
          if (timer) clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
      if (gapOpen) for (const c of cursors.values()) if (c.buffer.size > 0) c.needsRead = true;
    }
    return { value: undefined, done: true };
  }

  const stop = async (): Promise<IteratorResult<LogBatchPayload>> => {
    done = true;
    unlisten();
    wake?.();
    return { value: undefined, done: true };
  };

  return {
    next,
    return: stop,
    throw: async (err: unknown) => {
      await stop();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
