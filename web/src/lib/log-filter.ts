/**
 * Which of a run's log lines the log view shows: by stream and, when asked, only those matching
 * the search. Lines only ever arrive at the end, so the index grows by scanning the new ones; a
 * change of criteria rescans once (100,000 lines take a few milliseconds).
 */
import type { LogLine, LogStream } from "./log-buffer";

export const LOG_STREAMS: readonly LogStream[] = ["STDOUT", "STDERR", "SYSTEM"];

export interface LogCriteria {
  streams: ReadonlySet<LogStream>;
  /** Case-insensitive text to find; empty: none. */
  search: string;
  /** Hide the lines that do not match `search`. */
  onlyMatching: boolean;
}

export const ALL_LINES: LogCriteria = { streams: new Set(LOG_STREAMS), search: "", onlyMatching: false };

/** Whether `text` contains `search` (lower-cased already), ignoring case. */
function contains(text: string, search: string): boolean {
  return search !== "" && text.toLowerCase().includes(search);
}

/** `text` cut into the pieces that match `search` (case-insensitive) and those that do not, in order. */
export function splitMatches(text: string, search: string): { text: string; match: boolean }[] {
  if (!search) return [{ text, match: false }];
  const lower = text.toLowerCase();
  const needle = search.toLowerCase();
  const parts: { text: string; match: boolean }[] = [];
  let from = 0;
  for (let at = lower.indexOf(needle); at >= 0; at = lower.indexOf(needle, at + needle.length)) {
    if (at > from) parts.push({ text: text.slice(from, at), match: false });
    parts.push({ text: text.slice(at, at + needle.length), match: true });
    from = at + needle.length;
  }
  if (from < text.length || parts.length === 0) parts.push({ text: text.slice(from), match: false });
  return parts;
}

export class LogIndex {
  /** Indices (into the buffer's lines) of the rows shown, when not every line is. */
  private readonly rows: number[] = [];
  /** Rows (of those shown) whose line matches the search. */
  private readonly matchRows: number[] = [];
  private scanned = 0;
  private readonly search: string;
  /** Every line is shown: row i is line i, and `rows` stays empty. */
  readonly identity: boolean;

  constructor(readonly criteria: LogCriteria) {
    this.search = criteria.search.toLowerCase();
    this.identity = criteria.streams.size === LOG_STREAMS.length && !(this.search && criteria.onlyMatching);
  }

  /** Takes in the lines from the last scanned one up to `upTo` (exclusive). */
  update(lines: readonly LogLine[], upTo = lines.length): void {
    for (let i = this.scanned; i < upTo; i++) {
      const line = lines[i];
      if (!this.criteria.streams.has(line.stream)) continue;
      const match = contains(line.text, this.search);
      if (this.criteria.onlyMatching && this.search && !match) continue;
      const row = this.identity ? i : this.rows.push(i) - 1;
      if (match) this.matchRows.push(row);
    }
    this.scanned = Math.max(this.scanned, upTo);
  }

  /** Rows to show. */
  get length(): number {
    return this.identity ? this.scanned : this.rows.length;
  }

  /** Lines (of those shown) that match the search. */
  get matches(): number {
    return this.matchRows.length;
  }

  /** The buffer index of the line shown at `row`. */
  lineAt(row: number): number {
    return this.identity ? row : this.rows[row];
  }

  /** The first row whose seq is `seq` or, when that line is not shown, the next one after it; -1 if none. */
  rowOfSeq(lines: readonly LogLine[], seq: number): number {
    let low = 0;
    let high = this.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (lines[this.lineAt(mid)].seq < seq) low = mid + 1;
      else high = mid;
    }
    return low < this.length ? low : -1;
  }

  /** The next (or, backwards, previous) matching row after `row`, wrapping around; -1 when nothing matches. */
  nextMatch(row: number, backwards = false): number {
    const rows = this.matchRows;
    if (rows.length === 0) return -1;
    if (backwards) {
      for (let i = rows.length - 1; i >= 0; i--) if (rows[i] < row) return rows[i];
      return rows[rows.length - 1];
    }
    for (const r of rows) if (r > row) return r;
    return rows[0];
  }
}
