import { describe, expect, it } from "vitest";
import { accountingCsv, dailySeries, emptyFigures, sortRows, totalOf, totalsBy, type UsageRow } from "./accounting";

const row = (node: string, tool: string, user: string, day: string, runs: number, wallMs: number, peak = 0): UsageRow => ({
  ...emptyFigures(),
  node,
  tool,
  user,
  day,
  runs,
  succeeded: runs,
  wallMs,
  cpuUserMs: wallMs / 2,
  maxPeakRssBytes: peak,
});

const rows = [
  row("site-a", "slow@1.0.0", "alice", "2026-03-01", 2, 1_000, 10),
  row("site-b", "slow@1.0.0", "bob", "2026-03-01", 1, 4_000, 30),
  row("site-a", "fast@2.0.0", "alice", "2026-03-03", 3, 600, 20),
  row("site-a", "fast@2.0.0", "", "2026-03-03", 1, 100, 5),
];

describe("accounting shaping", () => {
  it("sums every figure over rows but keeps the largest peak memory", () => {
    const total = totalOf(rows);
    expect(total.runs).toBe(7);
    expect(total.wallMs).toBe(5_700);
    expect(total.cpuUserMs).toBe(2_850);
    expect(total.maxPeakRssBytes).toBe(30);
  });

  it("totals by a dimension, most wall time first, naming an empty user", () => {
    expect(totalsBy(rows, "node").map((t) => [t.key, t.runs, t.wallMs])).toEqual([
      ["site-b", 1, 4_000],
      ["site-a", 6, 1_700],
    ]);
    expect(totalsBy(rows, "user").map((t) => t.key)).toEqual(["bob", "alice", "(unknown)"]);
  });

  it("gives every day of the period, zeros where nothing ran", () => {
    const series = dailySeries(rows, ["2026-03-01", "2026-03-02", "2026-03-03"]);
    expect(series.map((d) => [d.day, d.runs, d.wallMs])).toEqual([
      ["2026-03-01", 3, 5_000],
      ["2026-03-02", 0, 0],
      ["2026-03-03", 4, 700],
    ]);
  });

  it("orders the table newest day first, then by node, tool and user", () => {
    expect(sortRows(rows).map((r) => `${r.day} ${r.node} ${r.user}`)).toEqual([
      "2026-03-03 site-a ",
      "2026-03-03 site-a alice",
      "2026-03-01 site-a alice",
      "2026-03-01 site-b bob",
    ]);
  });

  it("exports the table as CSV with a header and one line per row", () => {
    const lines = accountingCsv(rows).trimEnd().split("\r\n");
    expect(lines[0]).toBe("day,node,tool,user,runs,succeeded,failed,cancelled,wall_ms,cpu_user_ms,cpu_system_ms,max_peak_rss_bytes,log_bytes,output_bytes,released_bytes");
    expect(lines).toHaveLength(5);
    expect(lines[4]).toBe("2026-03-01,site-b,slow@1.0.0,bob,1,1,0,0,4000,2000,0,30,0,0,0");
  });
});
