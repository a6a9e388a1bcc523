import { describe, expect, it } from "vitest";
import type { LogLine, LogStream } from "./log-buffer";
import { ALL_LINES, LogIndex, LOG_STREAMS, splitMatches } from "./log-filter";

const line = (seq: number, stream: LogStream, text: string): LogLine => ({ seq, stream, at: "2026-01-01T00:00:00Z", text });
const LINES = [line(1, "SYSTEM", "started"), line(2, "STDOUT", "Alpha one"), line(3, "STDERR", "warning: alpha"), line(4, "STDOUT", "beta"), line(5, "STDOUT", "ALPHA two")];
const shown = (index: LogIndex) => Array.from({ length: index.length }, (_, row) => LINES[index.lineAt(row)].seq);

describe("LogIndex", () => {
  it("shows every line when nothing filters, and counts search matches", () => {
    const index = new LogIndex({ ...ALL_LINES, search: "alpha" });
    index.update(LINES);
    expect(index.identity).toBe(true);
    expect(shown(index)).toEqual([1, 2, 3, 4, 5]);
    expect(index.matches).toBe(3);
  });

  it("filters by stream and by search, case-insensitively, growing with new lines", () => {
    const index = new LogIndex({ streams: new Set<LogStream>(["STDOUT"]), search: "ALPHA", onlyMatching: true });
    index.update(LINES, 3);
    expect(shown(index)).toEqual([2]);
    index.update(LINES);
    expect(shown(index)).toEqual([2, 5]);
  });

  it("finds the row of a seq, or the next shown line after it", () => {
    const index = new LogIndex({ streams: new Set<LogStream>(["STDOUT"]), search: "", onlyMatching: false });
    index.update(LINES);
    expect(index.rowOfSeq(LINES, 4)).toBe(1);
    expect(index.rowOfSeq(LINES, 3)).toBe(1);
    expect(index.rowOfSeq(LINES, 1)).toBe(0);
    expect(index.rowOfSeq(LINES, 6)).toBe(-1);
  });

  it("steps through matches both ways, wrapping around", () => {
    const index = new LogIndex({ streams: new Set(LOG_STREAMS), search: "alpha", onlyMatching: false });
    index.update(LINES);
    expect(index.nextMatch(-1)).toBe(1);
    expect(index.nextMatch(1)).toBe(2);
    expect(index.nextMatch(4)).toBe(1);
    expect(index.nextMatch(1, true)).toBe(4);
  });
});

describe("splitMatches", () => {
  it("cuts text into matching and other pieces, keeping the original case", () => {
    expect(splitMatches("Alpha and alpha", "ALPHA")).toEqual([
      { text: "Alpha", match: true },
      { text: " and ", match: false },
      { text: "alpha", match: true },
    ]);
    expect(splitMatches("<b>x</b>", "")).toEqual([{ text: "<b>x</b>", match: false }]);
  });
});
