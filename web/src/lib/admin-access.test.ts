import { describe, expect, it } from "vitest";
import { adminSections, mayManageMembers } from "./admin-access";

describe("administration pages by role", () => {
  it("shows every section to ADMIN, Projects to a project's OWNER, nothing to others", () => {
    expect(adminSections({ roles: ["ADMIN"], memberships: [] })).toEqual(["nodes", "tools", "projects", "audit", "dead-letters"]);
    expect(adminSections({ roles: ["NODE_OPERATOR"], memberships: [{ projectId: "p", role: "OWNER" }] })).toEqual(["projects"]);
    expect(adminSections({ roles: ["NODE_OPERATOR"], memberships: [{ projectId: "p", role: "RESEARCHER" }] })).toEqual([]);
    expect(adminSections({ roles: [], memberships: [{ projectId: "p", role: "VIEWER" }] })).toEqual([]);
    expect(adminSections(null)).toEqual([]);
  });

  it("lets OWNERs manage only their own projects' members", () => {
    const owner = { roles: [], memberships: [{ projectId: "p1", role: "OWNER" }, { projectId: "p2", role: "RESEARCHER" }] };
    expect(mayManageMembers(owner, "p1")).toBe(true);
    expect(mayManageMembers(owner, "p2")).toBe(false);
    expect(mayManageMembers({ roles: ["ADMIN"], memberships: [] }, "p2")).toBe(true);
  });
});
