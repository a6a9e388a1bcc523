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
  /** Live lines that came in batches not handed out whole (overlapping, or with gaps), by seq. */
  buffer: Map<number, LogLine>;
  /**
   * Whole live batches by their first seq: handed out as they are, so that every follower of a run
   * delivers the same object (and the GraphQL execution of it is shared). Their lines are not in
   * `buffer`; segments and `buffer` never hold the same seq, and every seq they hold is > `lastSeq`.
   */
  whole: Map<number, Segment>;
  /** The database may hold lines this follower has not delivered. */
  needsRead: boolean;
}

interface Segment {
  first: number;
  last: number;
  payload: LogBatchPayload;
  chars: number;
}

interface SharedBatch {
  payload: LogBatchPayload;
  /** Its seqs go up by one. */
  contiguous: boolean;
  /** Characters of its text. */
  chars: number;
}

/** One batch per announced change, built once for every follower (pubsub hands each the same object). */
const sharedBatches = new WeakMap<LogChange, SharedBatch>();

function sharedBatchOf(change: LogChange): SharedBatch {
  let shared = sharedBatches.get(change);
  if (!shared) {
    const lines = change.lines.map((line): LogLine => ({ runId: change.runId, seq: line.seq, stream: line.stream as LogStream, at: new Date(line.at), text: line.text }));
    const contiguous = lines.every((line, i) => i === 0 || line.seq === lines[i - 1]!.seq + 1);
    const chars = lines.reduce((sum, line) => sum + line.text.length, 0);
    sharedBatches.set(change, (shared = { payload: { runId: change.runId, lines }, contiguous, chars }));
  }
  return shared;
}

/** Whether a segment holds any seq in `first..last`. */
function segmentsHold(cursor: Cursor, first: number, last: number): boolean {
  for (const segment of cursor.whole.values()) if (segment.first <= last && segment.last >= first) return true;
  return false;
}

/** Whether any seq in `first..last` is buffered, line by line or in a segment. */
function holdsAnyOf(cursor: Cursor, first: number, last: number): boolean {
  if (segmentsHold(cursor, first, last)) return true;
  if (cursor.buffer.size === 0) return false;
  if (cursor.buffer.size < last - first + 1) {
    for (const seq of cursor.buffer.keys()) if (seq >= first && seq <= last) return true;
    return false;
  }
  for (let seq = first; seq <= last; seq++) if (cursor.buffer.has(seq)) return true;
  return false;
}

/**
 * Followers with new lines, woken one per turn of the event loop: waking one runs its delivery
 * (GraphQL execution, serialisation, the socket write) before anything else, so waking ten at once
 * would hold ingestion's database round trips behind all ten.
 */
const wakeQueue = new Set<() => void>();
let wakeScheduled = false;

function wakeSoon(wakeFollower: () => void): void {
  wakeQueue.add(wakeFollower);
  if (!wakeScheduled) {
    wakeScheduled = true;
    setImmediate(wakeNext);
  }
}

function wakeNext(): void {
  const [first] = wakeQueue;
  if (first) {
    wakeQueue.delete(first);
    first();
  }
  if (wakeQueue.size > 0) setImmediate(wakeNext);
  else wakeScheduled = false;
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
  const wakeThis = () => wake?.();

  /** Over budget: every follower's live lines are forgotten (the database has them). */
  function overflow(cursor: Cursor): void {
    for (const c of cursors.values()) {
      c.needsRead = c.needsRead || c.buffer.size > 0 || c.whole.size > 0;
      c.buffer.clear();
      c.whole.clear();
    }
    buffered = 0;
    bufferedChars = 0;
    cursor.needsRead = true;
  }

  const unlisten = options.pubsub.listen(options.topic, (payload) => {
    const change = payload as LogChange;
    let cursor = cursors.get(change.runId);
    if (!cursor) cursors.set(change.runId, (cursor = { lastSeq: 0, buffer: new Map(), whole: new Map(), needsRead: true }));
    const shared = sharedBatchOf(change);
    const lines = shared.payload.lines;
    if (lines.length === 0) return;
    const first = lines[0]!.seq;
    const last = lines[lines.length - 1]!.seq;
    if (shared.contiguous && first > cursor.lastSeq && !holdsAnyOf(cursor, first, last)) {
      // Wholly new and gap-free (the usual case): held as one segment, no work per line.
      if (buffered + lines.length > bufferLines || bufferedChars + shared.chars > bufferChars) overflow(cursor);
      else {
        cursor.whole.set(first, { first, last, payload: shared.payload, chars: shared.chars });
        buffered += lines.length;
        bufferedChars += shared.chars;
      }
      wakeSoon(wakeThis);
      return;
    }
    for (const line of lines) {
      if (line.seq <= cursor.lastSeq || cursor.buffer.has(line.seq) || segmentsHold(cursor, line.seq, line.seq)) continue;
      if (buffered >= bufferLines || bufferedChars + line.text.length > bufferChars) {
        overflow(cursor);
        break;
      }
      cursor.buffer.set(line.seq, line);
      buffered += 1;
      bufferedChars += line.text.length;
    }
    wakeSoon(wakeThis);
  });

  function take(cursor: Cursor, line: LogLine): void {
    cursor.buffer.delete(line.seq);
    buffered -= 1;
    bufferedChars -= line.text.length;
    cursor.lastSeq = line.seq;
  }

  function takeContiguous(runId: string, cursor: Cursor): LogBatchPayload | null {
    const segment = cursor.whole.get(cursor.lastSeq + 1);
    if (segment) {
      cursor.whole.delete(segment.first);
      buffered -= segment.payload.lines.length;
      bufferedChars -= segment.chars;
      cursor.lastSeq = segment.last;
      return segment.payload;
    }
    // Stray lines up to the next gap or segment (segments never share a seq with the buffer).
    const lines: LogLine[] = [];
    while (lines.length < pageLines) {
      const line = cursor.buffer.get(cursor.lastSeq + 1);
      if (!line) break;
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
    for (const segment of [...cursor.whole.values()]) {
      if (segment.first > cursor.lastSeq) continue;
      cursor.whole.delete(segment.first);
      buffered -= segment.payload.lines.length;
      bufferedChars -= segment.chars;
      // Read in part from the database: its later lines stay buffered one by one.
      for (const line of segment.payload.lines) {
        if (line.seq <= cursor.lastSeq) continue;
        cursor.buffer.set(line.seq, line);
        buffered += 1;
        bufferedChars += line.text.length;
      }
    }
    return lines.length > 0 ? { runId, lines } : null;
  }

  async function next(): Promise<IteratorResult<LogBatchPayload>> {
    while (!done) {
      for (const [runId, cursor] of cursors) {
        const live = takeContiguous(runId, cursor);
        if (live) return { value: live, done: false };
        if (!cursor.needsRead && cursor.buffer.size === 0 && cursor.whole.size === 0) continue;
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
      const gapOpen = [...cursors.values()].some((c) => c.buffer.size > 0 || c.whole.size > 0);
      await new Promise<void>((resolve) => {
        const timer = gapOpen ? setTimeout(resolve, gapRecheckMs) : null;
        wake = () => {
          if (timer) clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
      if (gapOpen) for (const c of cursors.values()) if (c.buffer.size > 0 || c.whole.size > 0) c.needsRead = true;
    }
    return { value: undefined, done: true };
  }

  const stop = async (): Promise<IteratorResult<LogBatchPayload>> => {
    done = true;
    unlisten();
    wakeQueue.delete(wakeThis);
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
