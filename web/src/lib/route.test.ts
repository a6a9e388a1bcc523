import { describe, expect, it } from "vitest";
import { parseRoute, routeHref, type Route } from "./route";

describe("routes", () => {
  it("round-trips every page through the hash", () => {
    const routes: Route[] = [
      { page: "nodes" },
      { page: "workflows" },
      { page: "workflow", id: "w/1", taskId: null },
      { page: "workflow", id: "w1", taskId: "t 2" },
      { page: "run", id: "r1" },
      { page: "accounting" },
      { page: "tokens" },
      { page: "admin", section: "audit" },
      { page: "admin", section: "dead-letters" },
    ];
    for (const route of routes) expect(parseRoute(routeHref(route))).toEqual(route);
  });

  it("falls back to the workflow list", () => {
    expect(parseRoute("")).toEqual({ page: "workflows" });
    expect(parseRoute("#/nowhere")).toEqual({ page: "workflows" });
    expect(parseRoute("#/runs")).toEqual({ page: "workflows" });
    expect(parseRoute("#/admin/nowhere")).toEqual({ page: "admin", section: "nodes" });
  });
});
