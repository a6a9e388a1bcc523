/**
 * Accounting periods in whole UTC days (the API groups by the UTC day a run finished): a period
 * is a first and a last day, both included, sent as `from` (first day 00:00Z) and `to` (the day
 * after the last, 00:00Z, excluded).
 */

export const PERIOD_PRESETS = ["today", "7d", "30d", "this-month", "last-month", "custom"] as const;
export type PeriodPreset = (typeof PERIOD_PRESETS)[number];

export const PERIOD_LABELS: Record<PeriodPreset, string> = {
  today: "Today",
  "7d": "Last 7 days",
  "30d": "Last 30 days",
  "this-month": "This month",
  "last-month": "Last month",
  custom: "Custom…",
};

export interface Period {
  /** YYYY-MM-DD, UTC, included. */
  firstDay: string;
  /** YYYY-MM-DD, UTC, included. */
  lastDay: string;
}

const DAY_MS = 86_400_000;
/** The longest period shown day by day. @default 366 */
export const MAX_PERIOD_DAYS = 366;

export function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function parseDay(day: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return null;
  const ms = Date.parse(`${day}T00:00:00Z`);
  return Number.isNaN(ms) || utcDay(new Date(ms)) !== day ? null : ms;
}

/** The days a preset covers, relative to `now` (custom: the last 7 days, to edit). */
export function presetPeriod(preset: PeriodPreset, now: Date): Period {
  const today = utcDay(now);
  const daysBack = (n: number) => utcDay(new Date(parseDay(today)! - n * DAY_MS));
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  switch (preset) {
    case "today":
      return { firstDay: today, lastDay: today };
    case "30d":
      return { firstDay: daysBack(29), lastDay: today };
    case "this-month":
      return { firstDay: utcDay(new Date(Date.UTC(year, month, 1))), lastDay: today };
    case "last-month":
      return { firstDay: utcDay(new Date(Date.UTC(year, month - 1, 1))), lastDay: utcDay(new Date(Date.UTC(year, month, 0))) };
    case "7d":
    case "custom":
      return { firstDay: daysBack(6), lastDay: today };
  }
}

/** Why the period cannot be asked for, or null when it can. */
export function periodProblem(period: Period): string | null {
  const first = parseDay(period.firstDay);
  const last = parseDay(period.lastDay);
  if (first === null || last === null) return "Choose a first and a last day.";
  if (last < first) return "The last day is before the first.";
  if ((last - first) / DAY_MS + 1 > MAX_PERIOD_DAYS) return `Choose at most ${MAX_PERIOD_DAYS} days.`;
  return null;
}

/** The API filter's bounds: from the first day's start to the start of the day after the last. */
export function periodBounds(period: Period): { from: string; to: string } {
  const first = parseDay(period.firstDay);
  const last = parseDay(period.lastDay);
  if (first === null || last === null) throw new Error(`not a period: ${period.firstDay} – ${period.lastDay}`);
  return { from: new Date(first).toISOString(), to: new Date(last + DAY_MS).toISOString() };
}

/** Every day of the period, in order (at most MAX_PERIOD_DAYS). */
export function periodDays(period: Period): string[] {
  const first = parseDay(period.firstDay);
  const last = parseDay(period.lastDay);
  if (first === null || last === null || last < first) return [];
  const count = Math.min(MAX_PERIOD_DAYS, (last - first) / DAY_MS + 1);
  return Array.from({ length: count }, (_, i) => utcDay(new Date(first + i * DAY_MS)));
}
