import { describe, expect, it } from "vitest";
import { contrastRatio, isTerminal, RUN_STATES, STATE_COLOURS, stateColours, stateRank } from "./states";

describe("state colours", () => {
  it("gives every state readable text (contrast at least 4.5)", () => {
    for (const state of RUN_STATES) {
      const { background, foreground } = STATE_COLOURS[state];
      expect(contrastRatio(background, foreground), state).toBeGreaterThanOrEqual(4.5);
    }
  });

  it("tells running, succeeded and failed apart at a glance", () => {
    const backgrounds = new Set(RUN_STATES.map((s) => STATE_COLOURS[s].background));
    expect(backgrounds.size).toBe(RUN_STATES.length);
  });

  it("shows an unknown state as PENDING", () => {
    expect(stateColours("PAUSED")).toEqual(STATE_COLOURS.PENDING);
  });

  it("computes WCAG contrast: black on white is 21", () => {
    expect(contrastRatio("#000000", "#ffffff")).toBeCloseTo(21, 5);
    expect(contrastRatio("#ffffff", "#ffffff")).toBe(1);
  });
});

describe("state order", () => {
  it("ranks states in the order a run goes through them, terminal ones last", () => {
    expect(stateRank("PENDING")).toBeLessThan(stateRank("QUEUED"));
    expect(stateRank("QUEUED")).toBeLessThan(stateRank("ACCEPTED"));
    expect(stateRank("ACCEPTED")).toBeLessThan(stateRank("RUNNING"));
    expect(stateRank("RUNNING")).toBeLessThan(stateRank("SUCCEEDED"));
    expect(stateRank("FAILED")).toBe(stateRank("SUCCEEDED"));
    expect(RUN_STATES.filter(isTerminal)).toEqual(["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"]);
  });
});
