/**
 * Turns a run's stdout/stderr bytes and the agent's SYSTEM notes into numbered log lines, recorded
 * (spooled) as soon as they are numbered and sent in `run.logs` batches bounded by size, line count
 * and time. Batching happens only under load (Nagle-like): when nothing sent earlier is still
 * unconfirmed, lines go out at once (those of one read together); while a batch is unconfirmed,
 * lines gather until it is confirmed, the batch is full, or `maxBatchMs` passed.
 */
import { StringDecoder } from "node:string_decoder";
import { MAX_LINES_PER_BATCH, MAX_LOG_LINE_CHARS, WIRE_VERSION, type LogLineWire, type LogStreamName, type RunLogsEvent } from "../messaging/contracts.js";

export interface LogBatcherSettings {
  nodeId: string;
  runId: string;
  attempt: number;
  /** A batch is sent once its lines reach this many bytes of JSON (the text, escaped, and 80 bytes per line). */
  maxBatchBytes: number;
  /** A line waits at most this long before its batch is sent (when earlier batches are unconfirmed). */
  maxBatchMs: number;
}

export interface LogBatcher {
  /** Bytes of a stream; complete lines are numbered now, a partial line waits for its newline. */
  write(stream: "STDOUT" | "STDERR", chunk: Buffer): void;
  /** The stream ended: its partial line, if any, becomes a line. */
  end(stream: "STDOUT" | "STDERR"): void;
  /** A line written by the agent itself. */
  system(text: string): void;
  /** Sends every pending line now (call before the run's terminal state). */
  flush(): void;
  /** Bytes of log text handed to `send` so far (UTF-8). */
  logBytes(): number;
  /** Drops any later line; call after the last `flush`. */
  stop(): void;
}

/** JSON bytes of one line besides its text (seq, stream, at, the text's quotes, braces, comma). */
const LINE_OVERHEAD_BYTES = 80;

/** Characters JSON escapes (to two or six bytes): a line with none of them is its UTF-8 bytes in JSON. */
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Bytes of `text` as a JSON string without its quotes, so that a batch's size on the wire is known, not guessed. */
export function jsonTextBytes(text: string): number {
  return ESCAPED.test(text) ? Buffer.byteLength(JSON.stringify(text)) - 2 : Buffer.byteLength(text);
}

/** Creates a batcher that hands each batch to `send` in order. */
export function createLogBatcher(
  settings: LogBatcherSettings,
  deps: {
    send: (event: RunLogsEvent) => void;
    /** Called with newly numbered lines before the call that produced them returns, and before they are sent. */
    record?: (lines: readonly LogLineWire[]) => void;
    now?: () => Date;
    /** Whether every batch sent so far is confirmed; lines wait for `maxBatchMs` when this is absent. */
    idle?: () => boolean;
    /** Registers a call for each time `idle` becomes true; returns its remover. */
    onIdle?: (listener: () => void) => () => void;
  },
): LogBatcher {
  const now = deps.now ?? (() => new Date());
  const decoders = { STDOUT: new StringDecoder("utf8"), STDERR: new StringDecoder("utf8") };
  const partial = { STDOUT: "", STDERR: "" };
  let pending: LogLineWire[] = [];
  /** Index in `pending` of the first line not yet recorded. */
  let unrecorded = 0;
  let pendingBytes = 0;
  let nextSeq = 1;
  let sentBytes = 0;
  let timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  let stopped = false;
  const cancelTimer = () => {
    if (timer) {
      clearTimeout(timer as NodeJS.Timeout);
      clearImmediate(timer as NodeJS.Immediate);
    }
    timer = null;
  };
  /** Idle: after this turn's reads (they join the batch). Busy: at most `maxBatchMs`, sooner once idle. */
  const arm = () => {
    timer = deps.idle?.() ? setImmediate(flush) : setTimeout(flush, settings.maxBatchMs);
  };
  const removeIdleListener = deps.onIdle?.(() => {
    if (pending.length > 0 && !stopped) {
      cancelTimer();
      timer = setImmediate(flush);
    }
  });

  function add(stream: LogStreamName, text: string): void {
    // After the terminal state nothing may follow, so late lines are dropped.
    if (stopped) return;
    for (const piece of splitLongLine(text)) {
      pending.push({ seq: nextSeq, stream, at: now().toISOString(), text: piece });
      nextSeq += 1;
      pendingBytes += jsonTextBytes(piece) + LINE_OVERHEAD_BYTES;
      if (pendingBytes >= settings.maxBatchBytes || pending.length >= MAX_LINES_PER_BATCH) flush();
    }
    if (pending.length > 0 && !timer) arm();
  }

  function take(stream: "STDOUT" | "STDERR", text: string): void {
    const lines = (partial[stream] + text).split("\n");
    partial[stream] = lines.pop() ?? "";
    for (const line of lines) add(stream, line.endsWith("\r") ? line.slice(0, -1) : line);
    // A line with no newline in sight is cut at the limit rather than held without bound.
    while (partial[stream].length >= MAX_LOG_LINE_CHARS) {
      const cut = safeCut(partial[stream], MAX_LOG_LINE_CHARS);
      add(stream, partial[stream].slice(0, cut));
      partial[stream] = partial[stream].slice(cut);
    }
  }

  function record(): void {
    if (unrecorded < pending.length) deps.record?.(pending.slice(unrecorded));
    unrecorded = pending.length;
  }

  function flush(): void {
    cancelTimer();
    if (pending.length === 0) return;
    record();
    const lines = pending;
    pending = [];
    unrecorded = 0;
    pendingBytes = 0;
    for (const line of lines) sentBytes += Buffer.byteLength(line.text);
    deps.send({ type: "run.logs", v: WIRE_VERSION, nodeId: settings.nodeId, runId: settings.runId, attempt: settings.attempt, lines });
  }

  return {
    write(stream, chunk) {
      take(stream, decoders[stream].write(chunk));
      record();
    },
    end(stream) {
      take(stream, decoders[stream].end());
      if (partial[stream] !== "") add(stream, partial[stream]);
      partial[stream] = "";
      record();
    },
    system(text) {
      for (const line of text.split("\n")) add("SYSTEM", line);
      record();
    },
    flush,
    logBytes: () => sentBytes,
    stop() {
      stopped = true;
      cancelTimer();
      removeIdleListener?.();
    },
  };
}

/** Splits a line into pieces of at most `MAX_LOG_LINE_CHARS` UTF-16 units, never inside a surrogate pair. */
export function splitLongLine(text: string): string[] {
  if (text.length <= MAX_LOG_LINE_CHARS) return [text];
  const pieces: string[] = [];
  let rest = text;
  while (rest.length > MAX_LOG_LINE_CHARS) {
    const cut = safeCut(rest, MAX_LOG_LINE_CHARS);
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest !== "") pieces.push(rest);
  return pieces;
}

function safeCut(text: string, limit: number): number {
  const code = text.charCodeAt(limit - 1);
  return code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit;
}
