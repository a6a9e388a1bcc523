/** The accounting charts (recharts, SVG): runs per day by outcome, and wall time per node, tool or user. */
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { formatMs } from "../lib/format";
import type { UsageFigures } from "../lib/accounting";

const COLOURS = { succeeded: "#15803d", failed: "#b91c1c", cancelled: "#6b7280", wall: "#1d4ed8", cpu: "#f59e0b" };

export function RunsPerDayChart({ series }: { series: (UsageFigures & { day: string })[] }) {
  return (
    <figure className="chart" data-testid="runs-per-day">
      <figcaption>Runs finished per day (UTC); the table below has every figure</figcaption>
      <ResponsiveContainer width="100%" height={260}>
        <BarChart data={series} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="day" tickFormatter={(day: string) => day.slice(5)} minTickGap={12} />
          <YAxis allowDecimals={false} width={48} />
          <Tooltip />
          <Legend />
          <Bar dataKey="succeeded" name="Succeeded" stackId="runs" fill={COLOURS.succeeded} isAnimationActive={false} />
          <Bar dataKey="failed" name="Failed" stackId="runs" fill={COLOURS.failed} isAnimationActive={false} />
          <Bar dataKey="cancelled" name="Cancelled" stackId="runs" fill={COLOURS.cancelled} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}

export function TimeByChart({ totals, label }: { totals: (UsageFigures & { key: string })[]; label: string }) {
  const shown = totals.slice(0, 15).map((t) => ({ key: t.key, wallMs: t.wallMs, cpuMs: t.cpuUserMs + t.cpuSystemMs }));
  return (
    <figure className="chart" data-testid="time-by">
      <figcaption>
        Wall and CPU time by {label.toLowerCase()}
        {totals.length > shown.length ? ` (the ${shown.length} largest of ${totals.length})` : ""}
      </figcaption>
      <ResponsiveContainer width="100%" height={Math.max(160, 40 + shown.length * 34)}>
        <BarChart data={shown} layout="vertical" margin={{ top: 8, right: 24, bottom: 8, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" horizontal={false} />
          <XAxis type="number" tickFormatter={(ms: number) => formatMs(ms)} />
          <YAxis type="category" dataKey="key" width={160} />
          <Tooltip formatter={(ms) => formatMs(Number(ms))} />
          <Legend />
          <Bar dataKey="wallMs" name="Wall time" fill={COLOURS.wall} isAnimationActive={false} />
          <Bar dataKey="cpuMs" name="CPU time" fill={COLOURS.cpu} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}
