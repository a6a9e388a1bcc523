/** How the CLI prints: borderless tables, colours when the terminal takes them, JSON for scripts. */
import Table from "cli-table3";
import pc from "picocolors";

export interface Output {
  /** One line (or block) to stdout. */
  line(text: string): void;
  /** A note to stderr: hints and progress that scripts reading stdout do not want. */
  note(text: string): void;
  json(value: unknown): void;
}

export const stdio: Output = {
  line: (text) => process.stdout.write(`${text}\n`),
  note: (text) => process.stderr.write(`${text}\n`),
  json: (value) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
};

/** Columns separated by two spaces, a header in bold: the shape of `kubectl get` and `squeue`. */
export function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  const t = new Table({
    head: head.map((h) => pc.bold(h)),
    chars: {
      top: "", "top-mid": "", "top-left": "", "top-right": "",
      bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "",
      left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "", middle: "  ",
    },
    style: { "padding-left": 0, "padding-right": 0, head: [], border: [], compact: true },
  });
  for (const row of rows) t.push(row.map((cell) => (cell === null || cell === undefined ? "-" : String(cell))));
  return t.toString().split("\n").map((l) => l.trimEnd()).join("\n");
}

const STATE_COLOURS: Record<string, (s: string) => string> = {
  SUCCEEDED: pc.green,
  FAILED: pc.red,
  CANCELLED: pc.magenta,
  SKIPPED: pc.dim,
  RUNNING: pc.cyan,
  ONLINE: pc.green,
  OFFLINE: pc.red,
  ACTIVE: pc.green,
  DRAINING: pc.yellow,
  DISABLED: pc.red,
};

export function colourState(state: string): string {
  return (STATE_COLOURS[state] ?? pc.yellow)(state);
}

const PREFIX_COLOURS = [pc.cyan, pc.magenta, pc.yellow, pc.blue, pc.green, pc.red];

/** The same colour for the same name within one process, cycling through six. */
export function colourFor(): (name: string, text?: string) => string {
  const assigned = new Map<string, (s: string) => string>();
  return (name, text = name) => {
    let colour = assigned.get(name);
    if (!colour) assigned.set(name, (colour = PREFIX_COLOURS[assigned.size % PREFIX_COLOURS.length]!));
    return colour(text);
  };
}

/** `12 s ago`, `3 min ago`, or the ISO time past a day; `never` for none. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  return iso;
}

/** Milliseconds as `850 ms`, `12.3 s` or `4 min 5 s`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Bytes with a binary unit: `512 B`, `3.4 MiB`. */
export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = value;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
