/** Run, task and workflow states: their order, whether they are final, and how they are shown. */

export type RunState = "PENDING" | "QUEUED" | "ACCEPTED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED" | "SKIPPED";

export const RUN_STATES: readonly RunState[] = ["PENDING", "QUEUED", "ACCEPTED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"];

const TERMINAL: ReadonlySet<RunState> = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"]);

export function isTerminal(state: RunState): boolean {
  return TERMINAL.has(state);
}

/** How far along a run is: a run only moves forward, so a higher rank is newer news. Terminal states share the top rank. */
export function stateRank(state: RunState): number {
  return isTerminal(state) ? 4 : RUN_STATES.indexOf(state);
}

export interface StateColours {
  background: string;
  foreground: string;
  /** Outline of a task box in the graph. */
  border: string;
}

/** Each pair has a contrast ratio of at least 4.5 (WCAG AA for text); a unit test keeps it so. */
export const STATE_COLOURS: Readonly<Record<RunState, StateColours>> = {
  PENDING: { background: "#f3f4f6", foreground: "#374151", border: "#9ca3af" },
  QUEUED: { background: "#dbeafe", foreground: "#1e3a8a", border: "#60a5fa" },
  ACCEPTED: { background: "#bfdbfe", foreground: "#1e3a8a", border: "#3b82f6" },
  RUNNING: { background: "#1d4ed8", foreground: "#ffffff", border: "#1e3a8a" },
  SUCCEEDED: { background: "#15803d", foreground: "#ffffff", border: "#14532d" },
  FAILED: { background: "#b91c1c", foreground: "#ffffff", border: "#7f1d1d" },
  CANCELLED: { background: "#fde68a", foreground: "#713f12", border: "#d97706" },
  SKIPPED: { background: "#e5e7eb", foreground: "#4b5563", border: "#9ca3af" },
};

/** Colours of a state; an unknown state (a newer server) is shown as PENDING. */
export function stateColours(state: string): StateColours {
  return STATE_COLOURS[state as RunState] ?? STATE_COLOURS.PENDING;
}

function channel(hex: string, offset: number): number {
  const value = parseInt(hex.slice(offset, offset + 2), 16) / 255;
  return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
}

function luminance(hex: string): number {
  return 0.2126 * channel(hex, 1) + 0.7152 * channel(hex, 3) + 0.0722 * channel(hex, 5);
}

/** WCAG contrast ratio of two `#rrggbb` colours, from 1 to 21. */
export function contrastRatio(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}
