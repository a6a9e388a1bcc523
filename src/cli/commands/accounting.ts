/** `fem accounting --by node,tool,user,day [--from D] [--to D] [--csv | --json]`. */
import type { CommandContext } from "../context.js";
import { CliError } from "../errors.js";
import { ACCOUNTING, type AccountingRow } from "../operations.js";
import { bytes, duration, table } from "../render.js";

export interface AccountingOptions {
  by: string;
  from?: string;
  to?: string;
  workflow?: string;
  csv?: boolean;
  json?: boolean;
}

const DIMENSIONS = ["node", "tool", "user", "day"] as const;
type Dimension = (typeof DIMENSIONS)[number];
const FIGURES = ["runs", "succeeded", "failed", "cancelled", "wallMs", "cpuUserMs", "cpuSystemMs", "maxPeakRssBytes", "logBytes", "outputBytes"] as const;

export async function accounting(ctx: CommandContext, options: AccountingOptions): Promise<void> {
  const by = options.by.split(",").map((d) => d.trim().toLowerCase()).filter(Boolean);
  const unknown = by.filter((d) => !(DIMENSIONS as readonly string[]).includes(d));
  if (by.length === 0 || unknown.length > 0) throw CliError.usage(`--by takes a comma-separated list of ${DIMENSIONS.join(", ")}${unknown.length ? `, not ${unknown.join(", ")}` : ""}`);
  const filter = { ...(options.from ? { from: isoTime("--from", options.from) } : {}), ...(options.to ? { to: isoTime("--to", options.to) } : {}), ...(options.workflow ? { workflowId: options.workflow } : {}) };
  const api = await ctx.api();
  const { accounting: rows } = await api.request<{ accounting: AccountingRow[] }>(ACCOUNTING, { groupBy: by.map((d) => d.toUpperCase()), filter });
  const dims = by as Dimension[];
  if (options.json) return ctx.out.json(rows);
  if (options.csv) {
    const lines = [[...dims, ...FIGURES].join(",")];
    for (const row of rows) lines.push([...dims.map((d) => row[d]), ...FIGURES.map((f) => row[f])].map(csvCell).join(","));
    return ctx.out.line(lines.join("\n"));
  }
  if (rows.length === 0) return ctx.out.line("no finished runs match");
  ctx.out.line(
    table(
      [...dims.map((d) => d.toUpperCase()), "RUNS", "OK", "FAILED", "CANCELLED", "WALL", "CPU", "MAX RSS", "LOGS", "OUTPUTS"],
      rows.map((r) => [...dims.map((d) => r[d]), r.runs, r.succeeded, r.failed, r.cancelled, duration(r.wallMs), duration(r.cpuUserMs + r.cpuSystemMs), bytes(r.maxPeakRssBytes), bytes(r.logBytes), bytes(r.outputBytes)]),
    ),
  );
}

/** A day (`2026-11-30`, midnight UTC) or an ISO time, as the ISO time the API takes. */
function isoTime(option: string, text: string): string {
  const time = /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T00:00:00Z`) : Date.parse(text);
  if (Number.isNaN(time)) throw CliError.usage(`${option} ${text}: expected a day (YYYY-MM-DD) or an ISO time`);
  return new Date(time).toISOString();
}

/** RFC 4180: a cell with a comma, quote or line break is quoted, its quotes doubled. */
function csvCell(value: string | number | null): string {
  const text = value === null ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
