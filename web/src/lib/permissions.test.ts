import { describe, expect, it } from "vitest";
import { adminStateActions, canChangeWork, canDecideRelease, hasProjectRole, operatesNode, type ViewerRoles } from "./permissions";

const viewer = (over: Partial<ViewerRoles>): ViewerRoles => ({ subject: "s", roles: [], memberships: [], operatedNodes: [], ...over });
const researcher = viewer({ memberships: [{ projectId: "p1", role: "RESEARCHER" }, { projectId: "p2", role: "VIEWER" }] });
const admin = viewer({ roles: ["ADMIN"] });
const operator = viewer({ roles: ["NODE_OPERATOR"], operatedNodes: ["site-a"] });

describe("permissions", () => {
  it("ranks project roles: OWNER ⊇ RESEARCHER ⊇ VIEWER; ADMIN holds all", () => {
    expect(hasProjectRole(researcher, "p1", "VIEWER")).toBe(true);
    expect(hasProjectRole(researcher, "p1", "OWNER")).toBe(false);
    expect(hasProjectRole(researcher, "p3", "VIEWER")).toBe(false);
    expect(hasProjectRole(admin, "p3", "OWNER")).toBe(true);
    expect(hasProjectRole(null, "p1", "VIEWER")).toBe(false);
  });

  it("lets a RESEARCHER change the project's work, not a VIEWER; a project-less workflow only ADMIN", () => {
    expect(canChangeWork(researcher, "p1")).toBe(true);
    expect(canChangeWork(researcher, "p2")).toBe(false);
    expect(canChangeWork(researcher, null)).toBe(false);
    expect(canChangeWork(admin, null)).toBe(true);
  });

  it("lets operators act on their own nodes only, and decide releases unless the node decides locally", () => {
    expect(operatesNode(operator, "site-a")).toBe(true);
    expect(operatesNode(operator, "site-b")).toBe(false);
    expect(operatesNode(researcher, "site-a")).toBe(false);
    expect(operatesNode(admin, "anything")).toBe(true);
    expect(canDecideRelease(operator, "site-a", "REVIEW")).toBe(true);
    expect(canDecideRelease(operator, "site-a", "LOCAL")).toBe(false);
    expect(canDecideRelease(researcher, "site-a", "REVIEW")).toBe(false);
  });

  it("offers the admin states other than the current one", () => {
    expect(adminStateActions("ACTIVE").map((a) => a.label)).toEqual(["Drain", "Disable"]);
    expect(adminStateActions("DISABLED").map((a) => a.state)).toEqual(["ACTIVE", "DRAINING"]);
  });
});
