/**
 * The per-run log cap, as a pure plan: which of a run's new lines are stored, and where the log
 * was truncated. Past the cap the first line that does not fit is replaced by one SYSTEM notice
 * carrying its `seq`, and every later line is dropped, so the stored log stays gap-free and simply
 * ends at the notice (a follower never waits for a line that will not come).
 */
import type { LogLineWire } from "../messaging/contracts.js";
import { replaceNul } from "../shared/index.js";

/** What the run row says about its log so far. */
export interface RunLogState {
  logBytes: number;
  /** Seq of the truncation notice, once the log was truncated. */
  truncatedSeq: number | null;
  /** Highest seq dropped so far. */
  droppedToSeq: number | null;
  droppedBytes: number;
}

export interface LogRow {
  seq: number;
  stream: string;
  at: string;
  text: string;
}

export interface LogPlan {
  /** Rows to insert (new lines that fit, and the notice when this batch truncates the log). */
  rows: LogRow[];
  /** The run's log state after this batch. */
  state: RunLogState;
  /** Whether the notice's text changed (more dropped) and must be rewritten. */
  noticeChanged: boolean;
}

/** The text of the truncation notice. */
export function truncationNotice(state: RunLogState, maxBytes: number): string {
  const lines = (state.droppedToSeq ?? 0) - (state.truncatedSeq ?? 0) + 1;
  return `log truncated: over the ${maxBytes}-byte limit per run (FEM_MAX_LOG_BYTES_PER_RUN); ${lines} line(s) and ${state.droppedBytes} bytes dropped from line ${state.truncatedSeq} on`;
}

/**
 * Plans the storing of `lines` (new ones only, in any order; NULs become U+FFFD). A late line
 * below the notice (a redelivered batch) is still stored, with empty text once over the cap, so
 * no gap opens; lines above the highest dropped seq count once toward the dropped bytes.
 */
export function planLogLines(lines: LogLineWire[], before: RunLogState, maxBytes: number): LogPlan {
  const state = { ...before };
  const rows: LogRow[] = [];
  let noticeChanged = false;
  for (const line of [...lines].sort((a, b) => a.seq - b.seq)) {
    const text = replaceNul(line.text).text;
    const sizeBytes = Buffer.byteLength(text);
    const fits = state.logBytes + sizeBytes <= maxBytes;
    if (state.truncatedSeq !== null && line.seq >= state.truncatedSeq) {
      if (state.droppedToSeq === null || line.seq > state.droppedToSeq) {
        state.droppedToSeq = line.seq;
        state.droppedBytes += sizeBytes;
        noticeChanged = true;
      }
      continue;
    }
    if (fits || state.truncatedSeq !== null) {
      const stored = fits ? text : "";
      rows.push({ seq: line.seq, stream: line.stream, at: line.at, text: stored });
      state.logBytes += Buffer.byteLength(stored);
      continue;
    }
    state.truncatedSeq = line.seq;
    state.droppedToSeq = line.seq;
    state.droppedBytes += sizeBytes;
    rows.push({ seq: line.seq, stream: "SYSTEM", at: line.at, text: "" });
  }
  const notice = rows.find((r) => r.seq === state.truncatedSeq && before.truncatedSeq === null);
  if (notice) {
    notice.text = truncationNotice(state, maxBytes);
    state.logBytes += Buffer.byteLength(notice.text);
  }
  return { rows, state, noticeChanged: noticeChanged && before.truncatedSeq !== null };
}
