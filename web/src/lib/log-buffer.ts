/**
 * A run's log lines as the page holds them: in seq order, each seq once, with no gap. Batches may
 * repeat lines (a resubscription after a dropped connection) or skip ahead (lines lost in between);
 * lines past a gap wait until the gap is filled.
 */

export type LogStream = "STDOUT" | "STDERR" | "SYSTEM";

export interface LogLine {
  seq: number;
  stream: LogStream;
  at: string;
  text: string;
}

export interface AppendResult {
  /** Lines that became visible. */
  added: number;
  /** Lines already held (or waiting), dropped. */
  duplicates: number;
  /** When lines wait behind a gap: fetch the lines after this seq to fill it; else null. */
  missingAfter: number | null;
}

/** Most lines that may wait behind a gap before the oldest waiting ones are dropped (they come again when the gap is filled). */
const MAX_WAITING = 100_000;

export class LogBuffer {
  /** Visible lines, `lines[i].seq === i + 1 + firstSeq - 1`; append-only, read by the list view. */
  readonly lines: LogLine[] = [];
  private readonly waiting = new Map<number, LogLine>();
  private last: number;

  /** @param afterSeq lines up to this seq are not wanted (0: from the first line). */
  constructor(afterSeq = 0) {
    this.last = afterSeq;
  }

  /** The highest seq held with none missing before it: where to resume. */
  get lastSeq(): number {
    return this.last;
  }

  append(batch: readonly LogLine[]): AppendResult {
    let added = 0;
    let duplicates = 0;
    for (const line of batch) {
      if (line.seq <= this.last || this.waiting.has(line.seq)) {
        duplicates++;
        continue;
      }
      if (line.seq === this.last + 1) {
        this.lines.push(line);
        this.last = line.seq;
        added++;
        added += this.drainWaiting();
      } else if (this.waiting.size < MAX_WAITING) {
        this.waiting.set(line.seq, line);
      }
    }
    return { added, duplicates, missingAfter: this.waiting.size > 0 ? this.last : null };
  }

  private drainWaiting(): number {
    let drained = 0;
    for (let next = this.waiting.get(this.last + 1); next; next = this.waiting.get(this.last + 1)) {
      this.waiting.delete(next.seq);
      this.lines.push(next);
      this.last = next.seq;
      drained++;
    }
    return drained;
  }
}
