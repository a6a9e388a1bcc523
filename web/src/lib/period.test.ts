import { describe, expect, it } from "vitest";
import { periodBounds, periodDays, periodProblem, presetPeriod } from "./period";

const now = new Date("2026-03-10T23:30:00Z");

describe("accounting periods", () => {
  it("covers whole UTC days for each preset", () => {
    expect(presetPeriod("today", now)).toEqual({ firstDay: "2026-03-10", lastDay: "2026-03-10" });
    expect(presetPeriod("7d", now)).toEqual({ firstDay: "2026-03-04", lastDay: "2026-03-10" });
    expect(presetPeriod("30d", now)).toEqual({ firstDay: "2026-02-09", lastDay: "2026-03-10" });
    expect(presetPeriod("this-month", now)).toEqual({ firstDay: "2026-03-01", lastDay: "2026-03-10" });
    expect(presetPeriod("last-month", now)).toEqual({ firstDay: "2026-02-01", lastDay: "2026-02-28" });
    expect(presetPeriod("last-month", new Date("2026-01-05T00:00:00Z"))).toEqual({ firstDay: "2025-12-01", lastDay: "2025-12-31" });
  });

  it("asks from the first day's start to the start of the day after the last", () => {
    expect(periodBounds({ firstDay: "2026-02-27", lastDay: "2026-02-28" })).toEqual({ from: "2026-02-27T00:00:00.000Z", to: "2026-03-01T00:00:00.000Z" });
  });

  it("lists every day of the period, across a month's end", () => {
    expect(periodDays({ firstDay: "2026-02-27", lastDay: "2026-03-02" })).toEqual(["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]);
    expect(periodDays({ firstDay: "2026-03-02", lastDay: "2026-03-01" })).toEqual([]);
  });

  it("says what is wrong with a period it cannot ask for", () => {
    expect(periodProblem({ firstDay: "2026-03-01", lastDay: "2026-03-01" })).toBeNull();
    expect(periodProblem({ firstDay: "", lastDay: "2026-03-01" })).toMatch(/first and a last day/);
    expect(periodProblem({ firstDay: "2026-02-30", lastDay: "2026-03-01" })).toMatch(/first and a last day/);
    expect(periodProblem({ firstDay: "2026-03-02", lastDay: "2026-03-01" })).toMatch(/before the first/);
    expect(periodProblem({ firstDay: "2024-01-01", lastDay: "2026-03-01" })).toMatch(/at most 366 days/);
  });
});
