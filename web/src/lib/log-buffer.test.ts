import { describe, expect, it } from "vitest";
import { LogBuffer, type LogLine } from "./log-buffer";

const line = (seq: number): LogLine => ({ seq, stream: "STDOUT", at: "2026-12-01T00:00:00.000Z", text: `line ${seq}` });
const range = (from: number, to: number): LogLine[] => Array.from({ length: to - from + 1 }, (_, i) => line(from + i));
const seqs = (buffer: LogBuffer): number[] => buffer.lines.map((l) => l.seq);

describe("log buffer", () => {
  it("keeps lines in seq order and resumes after the last one", () => {
    const buffer = new LogBuffer();
    expect(buffer.append(range(1, 3))).toEqual({ added: 3, duplicates: 0, missingAfter: null });
    expect(buffer.lastSeq).toBe(3);
    buffer.append(range(4, 5));
    expect(seqs(buffer)).toEqual([1, 2, 3, 4, 5]);
  });

  it("drops lines it has: a resubscription that replays from the start adds nothing twice", () => {
    const buffer = new LogBuffer();
    buffer.append(range(1, 4));
    expect(buffer.append(range(1, 6))).toEqual({ added: 2, duplicates: 4, missingAfter: null });
    expect(seqs(buffer)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("holds lines past a gap back and says where the gap starts, then releases them once it is filled", () => {
    const buffer = new LogBuffer();
    buffer.append(range(1, 2));
    expect(buffer.append(range(5, 6))).toEqual({ added: 0, duplicates: 0, missingAfter: 2 });
    expect(seqs(buffer)).toEqual([1, 2]);
    expect(buffer.append(range(3, 4))).toEqual({ added: 4, duplicates: 0, missingAfter: null });
    expect(seqs(buffer)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("counts a line that waits behind a gap as a duplicate when it comes again", () => {
    const buffer = new LogBuffer();
    buffer.append([line(1), line(3)]);
    expect(buffer.append([line(3)]).duplicates).toBe(1);
    buffer.append([line(2)]);
    expect(seqs(buffer)).toEqual([1, 2, 3]);
  });

  it("starts after a given seq", () => {
    const buffer = new LogBuffer(10);
    expect(buffer.append(range(9, 12)).added).toBe(2);
    expect(seqs(buffer)).toEqual([11, 12]);
  });

  it("appends 100,000 lines in batches quickly", () => {
    const buffer = new LogBuffer();
    const started = performance.now();
    for (let from = 1; from <= 100_000; from += 1_000) buffer.append(range(from, from + 999));
    expect(buffer.lines.length).toBe(100_000);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
