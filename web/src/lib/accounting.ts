/**
 * Shapes the accounting rows the API answers (one per node, tool, user and day) into what the
 * page shows: totals per dimension, a zero-filled daily series, the table's order and its CSV.
 */
import type { AccountingQuery } from "../gql-admin/graphql";
import { toCsv } from "./csv";

/** One row of the Accounting query, as the API types it. */
type AccountingRow = AccountingQuery["accounting"][number];

/** The figures of one accounting row. */
export type UsageFigures = Omit<AccountingRow, "__typename" | "node" | "tool" | "user" | "day">;

export type UsageRow = UsageFigures & Partial<Pick<AccountingRow, "node" | "tool" | "user" | "day">>;

export type Dimension = "node" | "tool" | "user" | "day";

export const DIMENSION_LABELS: Record<Dimension, string> = { node: "Node", tool: "Tool", user: "User", day: "Day (UTC)" };

const SUMMED = ["runs", "succeeded", "failed", "cancelled", "wallMs", "cpuUserMs", "cpuSystemMs", "logBytes", "outputBytes", "releasedBytes"] as const;

export function emptyFigures(): UsageFigures {
  return { runs: 0, succeeded: 0, failed: 0, cancelled: 0, wallMs: 0, cpuUserMs: 0, cpuSystemMs: 0, maxPeakRssBytes: 0, logBytes: 0, outputBytes: 0, releasedBytes: 0 };
}

/** Adds `row` into `into` (sums, except the peak memory: the largest). */
export function addFigures(into: UsageFigures, row: UsageFigures): UsageFigures {
  for (const key of SUMMED) into[key] += row[key];
  into.maxPeakRssBytes = Math.max(into.maxPeakRssBytes, row.maxPeakRssBytes);
  return into;
}

export function totalOf(rows: readonly UsageRow[]): UsageFigures {
  return rows.reduce(addFigures, emptyFigures());
}

/** One total per value of the dimension (an empty user is "(unknown)"), most wall time first. */
export function totalsBy(rows: readonly UsageRow[], dimension: Dimension): (UsageFigures & { key: string })[] {
  const byKey = new Map<string, UsageFigures>();
  for (const row of rows) {
    const key = row[dimension] || "(unknown)";
    byKey.set(key, addFigures(byKey.get(key) ?? emptyFigures(), row));
  }
  return [...byKey].map(([key, figures]) => ({ key, ...figures })).sort((a, b) => b.wallMs - a.wallMs || a.key.localeCompare(b.key));
}

/** Each day of `days` with its totals; a day without runs is all zeros. */
export function dailySeries(rows: readonly UsageRow[], days: readonly string[]): (UsageFigures & { day: string })[] {
  const byDay = new Map(totalsBy(rows, "day").map(({ key, ...figures }) => [key, figures]));
  return days.map((day) => ({ day, ...(byDay.get(day) ?? emptyFigures()) }));
}

/** Newest day first, then node, tool and user. */
export function sortRows<T extends UsageRow>(rows: readonly T[]): T[] {
  const text = (v: string | null | undefined) => v ?? "";
  return [...rows].sort(
    (a, b) =>
      text(b.day).localeCompare(text(a.day)) || text(a.node).localeCompare(text(b.node)) || text(a.tool).localeCompare(text(b.tool)) || text(a.user).localeCompare(text(b.user)),
  );
}

export const CSV_HEADER = [
  "day",
  "node",
  "tool",
  "user",
  "runs",
  "succeeded",
  "failed",
  "cancelled",
  "wall_ms",
  "cpu_user_ms",
  "cpu_system_ms",
  "max_peak_rss_bytes",
  "log_bytes",
  "output_bytes",
  "released_bytes",
] as const;

export function accountingCsv(rows: readonly UsageRow[]): string {
  return toCsv(
    CSV_HEADER,
    sortRows(rows).map((r) => [
      r.day,
      r.node,
      r.tool,
      r.user,
      r.runs,
      r.succeeded,
      r.failed,
      r.cancelled,
      r.wallMs,
      r.cpuUserMs,
      r.cpuSystemMs,
      r.maxPeakRssBytes,
      r.logBytes,
      r.outputBytes,
      r.releasedBytes,
    ]),
  );
}
