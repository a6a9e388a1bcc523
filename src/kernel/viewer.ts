/**
 * Who is asking: the caller's global roles, project roles and operated nodes, loaded once per
 * request. Services take a Viewer and show or change only what it may see; what it cannot see
 * does not exist for it (NOT_FOUND).
 */
import { registerEnumType } from "type-graphql";

export enum GlobalRole {
  /** Users, projects, nodes, tools, dead letters, audit. */
  ADMIN = "ADMIN",
  /** Operates given nodes: sees their runs, drains or disables them. */
  NODE_OPERATOR = "NODE_OPERATOR",
}

export enum ProjectRole {
  /** Manages the project's members; everything a RESEARCHER may do. */
  OWNER = "OWNER",
  /** Submits, cancels and retries workflows; reads the project's workflows, runs, logs, results and accounting. */
  RESEARCHER = "RESEARCHER",
  /** Reads the project's workflows, runs, logs, results and accounting. */
  VIEWER = "VIEWER",
}

export interface Viewer {
  /** The identity's subject (OIDC `sub`, or an API token's owner); `system` for the orchestrator itself. */
  subject: string;
  roles: ReadonlySet<GlobalRole>;
  /** Project id → the caller's role in it. */
  projects: ReadonlyMap<string, ProjectRole>;
  /** Nodes the caller operates as NODE_OPERATOR. */
  operatedNodes: ReadonlySet<string>;
}

const rank: Record<ProjectRole, number> = { VIEWER: 1, RESEARCHER: 2, OWNER: 3 };

export function isAdmin(viewer: Viewer): boolean {
  return viewer.roles.has(GlobalRole.ADMIN);
}

/** True when the viewer holds at least `role` in the project (ADMIN holds every role everywhere). */
export function hasProjectRole(viewer: Viewer, projectId: string, role: ProjectRole): boolean {
  if (isAdmin(viewer)) return true;
  const held = viewer.projects.get(projectId);
  return held !== undefined && rank[held] >= rank[role];
}

/** True when the viewer operates the node (granted with grantNodeOperator) or is ADMIN. */
export function operatesNode(viewer: Viewer, nodeId: string): boolean {
  return isAdmin(viewer) || viewer.operatedNodes.has(nodeId);
}

/** Ids of the projects the viewer may read; null means every project (ADMIN). */
export function readableProjectIds(viewer: Viewer): string[] | null {
  return isAdmin(viewer) ? null : [...viewer.projects.keys()];
}

/** An environment (or any secret map) as a caller other than ADMIN sees it: the names, not the values. */
export function maskedEnv(env: Record<string, string>, viewer: Viewer): Record<string, string> {
  if (isAdmin(viewer)) return env;
  return Object.fromEntries(Object.keys(env).map((name) => [name, "***"]));
}

registerEnumType(GlobalRole, { name: "GlobalRole", description: "Roles that hold across projects." });
registerEnumType(ProjectRole, { name: "ProjectRole", description: "A member's role in one project." });
