/**
 * Usage of finished runs over a period of UTC days: totals, two charts, the table by day, node, tool
 * and user, and its CSV; read again whenever runs the caller's accounting counts end.
 */
import { useEffect, useMemo, useRef, useState } from "react";
import { useQuery } from "urql";
import { AccountingQuery, AccountingUpdatedSubscription } from "../api/admin-operations";
import { useStream } from "../api/use-stream";
import { Status, TableHead } from "../components/status";
import { RunsPerDayChart, TimeByChart } from "../components/usage-charts";
import { accountingCsv, dailySeries, DIMENSION_LABELS, sortRows, totalOf, totalsBy, type Dimension, type UsageFigures, type UsageRow } from "../lib/accounting";
import { downloadText } from "../lib/download";
import { formatBytes, formatMs } from "../lib/format";
import { PERIOD_LABELS, PERIOD_PRESETS, periodBounds, periodDays, periodProblem, presetPeriod, type Period, type PeriodPreset } from "../lib/period";

const CHART_DIMENSIONS: Dimension[] = ["node", "tool", "user"];
/** After runs end, the figures are read again once this has passed (one read for a burst of endings). */
const REREAD_AFTER_MS = 1_000;

function PeriodPicker({ preset, period, onChange }: { preset: PeriodPreset; period: Period; onChange(preset: PeriodPreset, period: Period): void }) {
  return (
    <fieldset className="period" data-testid="period">
      <legend>Period (whole days, UTC)</legend>
      <label>
        Show{" "}
        <select value={preset} onChange={(e) => onChange(e.target.value as PeriodPreset, presetPeriod(e.target.value as PeriodPreset, new Date()))}>
          {PERIOD_PRESETS.map((p) => (
            <option key={p} value={p}>
              {PERIOD_LABELS[p]}
            </option>
          ))}
        </select>
      </label>
      <label>
        First day <input type="date" value={period.firstDay} onChange={(e) => onChange("custom", { ...period, firstDay: e.target.value })} />
      </label>
      <label>
        Last day <input type="date" value={period.lastDay} onChange={(e) => onChange("custom", { ...period, lastDay: e.target.value })} />
      </label>
    </fieldset>
  );
}

function Totals({ total }: { total: UsageFigures }) {
  const items: [string, string][] = [
    ["Runs", String(total.runs)],
    ["Succeeded", String(total.succeeded)],
    ["Failed", String(total.failed)],
    ["Cancelled", String(total.cancelled)],
    ["Wall time", formatMs(total.wallMs)],
    ["CPU time", formatMs(total.cpuUserMs + total.cpuSystemMs)],
    ["Largest peak memory", formatBytes(total.maxPeakRssBytes)],
    ["Released outputs", formatBytes(total.releasedBytes)],
  ];
  return (
    <dl className="totals" data-testid="totals">
      {items.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd data-total={label}>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

export function AccountingPage() {
  const [preset, setPreset] = useState<PeriodPreset>("7d");
  const [period, setPeriod] = useState<Period>(() => presetPeriod("7d", new Date()));
  const [dimension, setDimension] = useState<Dimension>("node");
  const problem = periodProblem(period);
  const filter = useMemo(() => (problem ? null : periodBounds(period)), [problem, period]);
  const [query, refetch] = useQuery({ query: AccountingQuery, variables: { filter }, pause: filter === null });
  // Live: when runs this caller's accounting counts end, read the figures again (at most once a second).
  const reread = useRef<number | null>(null);
  const liveError = useStream(
    AccountingUpdatedSubscription,
    () => ({}),
    () => {
      if (reread.current !== null) return;
      reread.current = window.setTimeout(() => {
        reread.current = null;
        refetch({ requestPolicy: "network-only" });
      }, REREAD_AFTER_MS);
    },
    [],
  );
  useEffect(
    () => () => {
      if (reread.current !== null) window.clearTimeout(reread.current);
    },
    [],
  );
  const rows = useMemo(() => sortRows(query.data?.accounting ?? []), [query.data]);
  const total = useMemo(() => totalOf(rows), [rows]);
  const series = useMemo(() => dailySeries(rows, periodDays(period)), [rows, period]);
  const byDimension = useMemo(() => totalsBy(rows, dimension), [rows, dimension]);

  const exportCsv = () => downloadText(`fem-accounting-${period.firstDay}-to-${period.lastDay}.csv`, accountingCsv(rows), "text/csv;charset=utf-8");

  return (
    <section aria-labelledby="accounting-title">
      <h1 id="accounting-title">Accounting</h1>
      <p className="muted">Runs that finished in the period, of your projects and the nodes you operate (every run for ADMIN).</p>
      <div className="toolbar">
        <PeriodPicker
          preset={preset}
          period={period}
          onChange={(p, next) => {
            setPreset(p);
            setPeriod(next);
          }}
        />
        <button type="button" onClick={exportCsv} disabled={!query.data} data-testid="export-csv">
          Export CSV
        </button>
      </div>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      <Status fetching={query.fetching} error={query.error} liveError={liveError} what="accounting" />
      {query.data && (
        <>
          <Totals total={total} />
          {rows.length === 0 ? (
            <p data-testid="no-usage">No run finished in this period.</p>
          ) : (
            <>
              <div className="charts">
                <RunsPerDayChart series={series} />
                <div>
                  <label className="chart-by">
                    Time by{" "}
                    <select value={dimension} onChange={(e) => setDimension(e.target.value as Dimension)}>
                      {CHART_DIMENSIONS.map((d) => (
                        <option key={d} value={d}>
                          {DIMENSION_LABELS[d]}
                        </option>
                      ))}
                    </select>
                  </label>
                  <TimeByChart totals={byDimension} label={DIMENSION_LABELS[dimension]} />
                </div>
              </div>
              <UsageTable rows={rows} />
            </>
          )}
        </>
      )}
    </section>
  );
}

function UsageTable({ rows }: { rows: readonly UsageRow[] }) {
  return (
    <table className="grid numbers" data-testid="accounting-table">
      <caption>By day, node, tool and user</caption>
      <TableHead columns={["Day (UTC)", "Node", "Tool", "User", "Runs", "Succeeded", "Failed", "Cancelled", "Wall time", "CPU time", "Peak memory", "Log", "Released"]} />
      <tbody>
        {rows.map((r) => (
          <tr key={`${r.day}|${r.node}|${r.tool}|${r.user}`} data-node={r.node ?? ""} data-tool={r.tool ?? ""}>
            <td>{r.day}</td>
            <td>{r.node}</td>
            <td>{r.tool}</td>
            <td>{r.user || "—"}</td>
            <td data-col="runs">{r.runs}</td>
            <td data-col="succeeded">{r.succeeded}</td>
            <td>{r.failed}</td>
            <td>{r.cancelled}</td>
            <td title={`${r.wallMs} ms`}>{formatMs(r.wallMs)}</td>
            <td title={`${r.cpuUserMs + r.cpuSystemMs} ms`}>{formatMs(r.cpuUserMs + r.cpuSystemMs)}</td>
            <td>{formatBytes(r.maxPeakRssBytes)}</td>
            <td>{formatBytes(r.logBytes)}</td>
            <td>{formatBytes(r.releasedBytes)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
