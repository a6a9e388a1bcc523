/**
 * docs/benchmarks.md and docs/benchmarks.svg from the latest result of each scenario
 * (docs/benchmarks.json keeps them, so one scenario can be run again alone).
 */
import { readFile, writeFile } from "node:fs/promises";
import type { Figure, ScenarioResult } from "./lib.js";

export interface Report {
  machine: Record<string, string>;
  command: string;
  results: Record<string, ScenarioResult>;
}

const ORDER = ["dispatch", "latency", "logs", "fanout", "graph", "transfer"];
/** A hop's part of a bar: nothing when it was not measured. */
const share = (ms: number | null) => (ms === null || !Number.isFinite(ms) ? 0 : Math.max(0, ms));
/** A figure as text; a hop without a measurement (NaN, null once through JSON) shows as "—". */
const fmt = (n: number | null) => (n === null || !Number.isFinite(n) ? "—" : n.toLocaleString("en", { maximumFractionDigits: 1 }));

export async function mergeReport(path: string, update: Report): Promise<Report> {
  const previous = await readFile(path, "utf8").then((text) => JSON.parse(text) as Report, () => null);
  return { machine: update.machine, command: update.command, results: { ...previous?.results, ...update.results } };
}

function figureRow(f: Figure): string {
  const baseline = f.baseline ? `${fmt(f.baseline.value)} ${f.unit} (${f.baseline.label})` : "—";
  const ratio = f.baseline ? `${Math.round((f.value / f.baseline.value) * 100)} %` : "—";
  const verdict = f.met === undefined ? "" : f.met ? "met" : "**not met**";
  return `| ${f.label} | ${fmt(f.value)} ${f.unit} | ${baseline} | ${ratio} | ${f.target ?? ""} ${verdict} |`;
}

export function markdown(report: Report, svgName: string): string {
  const out = [
    "# Benchmarks",
    "",
    "Written by `npm run bench` (`bench/run.ts`); each scenario runs on its own database and vhost, and",
    "each figure stands beside a raw baseline measured in the same run on the same services. The",
    "machine is shared: compare ratios, not absolute figures, and read the load average beside each.",
    "",
    "## Machine",
    "",
    ...Object.entries(report.machine).map(([k, v]) => `- ${k}: ${v}`),
    "",
    "## Command",
    "",
    "```sh",
    "npm run bench                      # every scenario",
    "npm run bench -- dispatch logs     # some of them: dispatch latency logs fanout graph transfer",
    "npm run bench -- logs --lines=50000 --subscribers=10   # with other sizes",
    "```",
    "",
    `Last run: \`${report.command}\``,
    "",
    `![where the time goes and each figure against its baseline](${svgName})`,
    "",
  ];
  for (const name of ORDER) {
    const r = report.results[name];
    if (!r) continue;
    out.push(`## ${r.title}`, "", `Measured ${r.at.slice(0, 16).replace("T", " ")} UTC, load average ${r.load.before} → ${r.load.after}.`, "");
    out.push("| figure | measured | raw baseline (same run) | ratio | target |", "| --- | --- | --- | --- | --- |", ...r.figures.map(figureRow), "");
    if (r.breakdown?.length) out.push("Where the time goes:", "", ...r.breakdown.map((b) => `- ${b.label}: ${fmt(b.ms)} ms`), "");
    if (r.notes.length) out.push(...r.notes.map((n) => `- ${n}`), "");
  }
  return out.join("\n");
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"];

/** Two panels: each breakdown as a stacked bar (shares of its total), then each figure with a baseline as a ratio bar. */
export function svg(report: Report): string {
  const width = 900;
  const labelWidth = 230;
  const barWidth = width - labelWidth - 40;
  const parts: string[] = [];
  let y = 30;
  parts.push(`<text x="10" y="${y}" font-size="16" font-weight="bold">Where the time goes (share of each scenario's total)</text>`);
  y += 15;
  for (const name of ORDER) {
    const r = report.results[name];
    if (!r?.breakdown?.length) continue;
    const total = r.breakdown.reduce((sum, b) => sum + share(b.ms), 0) || 1;
    y += 10;
    parts.push(`<text x="10" y="${y + 14}" font-size="12">${escape(name)} (${fmt(total)} ms)</text>`);
    let x = labelWidth;
    r.breakdown.forEach((b, i) => {
      const w = (share(b.ms) / total) * barWidth;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="20" fill="${COLOURS[i % COLOURS.length]}"><title>${escape(b.label)}: ${fmt(b.ms)} ms</title></rect>`);
      x += w;
    });
    y += 24;
    let lx = labelWidth;
    r.breakdown.forEach((b, i) => {
      const text = `${b.label}: ${fmt(b.ms)} ms`;
      if (lx + text.length * 6 > width) {
        y += 14;
        lx = labelWidth;
      }
      parts.push(`<rect x="${lx}" y="${y + 2}" width="9" height="9" fill="${COLOURS[i % COLOURS.length]}"/><text x="${lx + 12}" y="${y + 11}" font-size="10">${escape(text)}</text>`);
      lx += 18 + text.length * 5.6;
    });
    y += 18;
  }
  y += 25;
  parts.push(`<text x="10" y="${y}" font-size="16" font-weight="bold">Each figure as a share of its raw baseline (same run)</text>`);
  y += 10;
  const scale = barWidth / 1.2;
  for (const name of ORDER) {
    for (const f of report.results[name]?.figures.filter((g) => g.baseline) ?? []) {
      y += 8;
      const share = f.value / f.baseline!.value;
      parts.push(`<text x="10" y="${y + 14}" font-size="12">${escape(`${name}: ${f.label}`.slice(0, 38))}</text>`);
      parts.push(`<rect x="${labelWidth}" y="${y}" width="${(Math.min(share, 1.2) * scale).toFixed(1)}" height="18" fill="${f.met === false ? "#e15759" : "#59a14f"}"/>`);
      parts.push(`<text x="${labelWidth + Math.min(share, 1.2) * scale + 5}" y="${y + 13}" font-size="11">${Math.round(share * 100)} % (${fmt(f.value)} vs ${fmt(f.baseline!.value)} ${escape(f.unit)})</text>`);
      y += 20;
    }
  }
  parts.push(`<line x1="${labelWidth + scale}" y1="${y - 10}" x2="${labelWidth + scale}" y2="${y + 5}" stroke="#333" stroke-dasharray="3"/><text x="${labelWidth + scale - 30}" y="${y + 17}" font-size="10">baseline</text>`);
  y += 30;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join("")}</svg>\n`;
}

export async function writeReport(dir: string, report: Report): Promise<void> {
  await writeFile(`${dir}/benchmarks.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(`${dir}/benchmarks.svg`, svg(report));
  await writeFile(`${dir}/benchmarks.md`, markdown(report, "benchmarks.svg"));
}
