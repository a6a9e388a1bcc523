/**
 * What the signed-in caller may do, from `me` (global roles, project roles, operated nodes): the
 * same rules the API enforces (src/kernel/viewer.ts and the services), used only to hide buttons
 * that would be refused. The API still decides; a refused action shows the server's message.
 */

export type GlobalRole = "ADMIN" | "NODE_OPERATOR";
export type ProjectRole = "OWNER" | "RESEARCHER" | "VIEWER";

export interface ViewerRoles {
  subject: string;
  roles: readonly string[];
  memberships: readonly { projectId: string; role: string }[];
  operatedNodes: readonly string[];
}

const RANK: Record<ProjectRole, number> = { VIEWER: 1, RESEARCHER: 2, OWNER: 3 };

export function isAdmin(viewer: ViewerRoles | null): boolean {
  return Boolean(viewer?.roles.includes("ADMIN"));
}

/** At least `role` in the project; ADMIN holds every role everywhere. */
export function hasProjectRole(viewer: ViewerRoles | null, projectId: string, role: ProjectRole): boolean {
  if (!viewer) return false;
  if (isAdmin(viewer)) return true;
  const held = viewer.memberships.find((m) => m.projectId === projectId)?.role as ProjectRole | undefined;
  return held !== undefined && RANK[held] >= RANK[role];
}

/** Drain, disable, enable, rotate: an operator of the node, or ADMIN. */
export function operatesNode(viewer: ViewerRoles | null, nodeId: string): boolean {
  return isAdmin(viewer) || Boolean(viewer?.operatedNodes.includes(nodeId));
}

/** Cancel and retry: RESEARCHER (or OWNER) in the workflow's project; a workflow from before projects, ADMIN only. */
export function canChangeWork(viewer: ViewerRoles | null, projectId: string | null | undefined): boolean {
  return projectId ? hasProjectRole(viewer, projectId, "RESEARCHER") : isAdmin(viewer);
}

/** Approve or reject an output: an operator of its node (or ADMIN), unless the node decides locally. */
export function canDecideRelease(viewer: ViewerRoles | null, nodeId: string, releasePolicy: string): boolean {
  return releasePolicy !== "LOCAL" && operatesNode(viewer, nodeId);
}

/** The admin states a node may be moved to from `current`, as button labels. */
export function adminStateActions(current: string): { state: "ACTIVE" | "DRAINING" | "DISABLED"; label: string }[] {
  const all = [
    { state: "ACTIVE", label: "Enable" },
    { state: "DRAINING", label: "Drain" },
    { state: "DISABLED", label: "Disable" },
  ] as const;
  return all.filter((a) => a.state !== current);
}
