/**
 * A strict reader of the Prometheus text exposition format (0.0.4): every line is a HELP, a TYPE
 * or a sample of a family whose TYPE came first; names, labels and values are checked. Throws on
 * the first line that is not valid.
 */
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"$/;
/** A float as Prometheus reads it (Go's ParseFloat: `NaN` and `Inf` in any case; prom-client writes `Nan`). */
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf|nan)$/i;
const TYPES = ["counter", "gauge", "histogram", "summary", "untyped"];
const SUFFIXES: Record<string, string[]> = { histogram: ["_bucket", "_sum", "_count"], summary: ["", "_sum", "_count"] };

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
  /** The value of the sample named `name` whose labels include `labels`; undefined when none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

function splitLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  // Pairs end with a closing quote; a value holding `",` itself would be split wrongly (none of ours does).
  const parts = text === "" ? [] : text.replace(/,$/, "").split(/(?<="),/);
  for (const part of parts) {
    const match = LABEL.exec(part);
    if (!match) throw new Error(`bad label ${JSON.stringify(part)} in: ${line}`);
    if (match[1] in labels) throw new Error(`label ${match[1]} twice in: ${line}`);
    labels[match[1]] = match[2];
  }
  return labels;
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const [family, type] of types) {
    if ((SUFFIXES[type] ?? []).some((suffix) => name === family + suffix)) return family;
  }
  return undefined;
}

export function parsePrometheusText(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!match) continue; // other comments are allowed
      if (!NAME.test(match[2])) throw new Error(`bad metric name in: ${line}`);
      if (match[1] === "TYPE") {
        if (!TYPES.includes(match[3])) throw new Error(`bad type in: ${line}`);
        if (types.has(match[2])) throw new Error(`TYPE twice for ${match[2]}`);
        types.set(match[2], match[3]);
      }
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const [, name, labelText, valueText] = match;
    if (!VALUE.test(valueText)) throw new Error(`bad value in: ${line}`);
    if (familyOf(name, types) === undefined) throw new Error(`sample before its TYPE: ${line}`);
    samples.push({ name, labels: splitLabels(labelText ?? "", line), value: /nan/i.test(valueText) ? NaN : Number(valueText.replace(/inf$/i, "Infinity")) });
  }
  return {
    types,
    samples,
    value(name, labels = {}) {
      return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    },
  };
}

/** GETs a metrics URL and parses the answer; checks the content type. */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Exposition> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  const type = response.headers.get("content-type") ?? "";
  if (!type.startsWith("text/plain") || !type.includes("version=0.0.4")) throw new Error(`content type ${type} is not Prometheus text 0.0.4`);
  return parsePrometheusText(await response.text());
}
