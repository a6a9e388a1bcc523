import { describe, expect, it } from "vitest";
import { EMPTY_FILTER, toWorkflowFilter } from "./workflow-filter";

describe("workflow filter", () => {
  it("sends nothing for an empty form", () => {
    expect(toWorkflowFilter(EMPTY_FILTER)).toEqual({});
  });

  it("sends only what the form says, with local times as ISO instants", () => {
    const filter = toWorkflowFilter({ state: "RUNNING", submittedBy: " ada ", project: "p-1", after: "2026-12-01T10:30", before: "nonsense" });
    expect(filter).toEqual({ states: ["RUNNING"], submittedBy: "ada", project: "p-1", submittedAfter: new Date("2026-12-01T10:30").toISOString() });
  });
});
