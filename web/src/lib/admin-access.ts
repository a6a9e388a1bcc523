/**
 * Which administration pages a caller is shown. The API enforces every rule itself (ADMIN for
 * nodes, tools, audit and dead letters; a project's OWNER for its members): this only hides what
 * would be refused.
 */

export const ADMIN_SECTIONS = ["nodes", "tools", "projects", "audit", "dead-letters"] as const;
export type AdminSection = (typeof ADMIN_SECTIONS)[number];

export const ADMIN_SECTION_TITLES: Record<AdminSection, string> = {
  nodes: "Register a node",
  tools: "Tools",
  projects: "Projects",
  audit: "Audit log",
  "dead-letters": "Dead letters",
};

export interface Access {
  roles: readonly string[];
  memberships: readonly { projectId: string; role: string }[];
}

export function isAdmin(access: Access | null | undefined): boolean {
  return Boolean(access?.roles.includes("ADMIN"));
}

/** The sections the caller may use: all for ADMIN, Projects for a project's OWNER, none otherwise. */
export function adminSections(access: Access | null | undefined): AdminSection[] {
  if (!access) return [];
  if (isAdmin(access)) return [...ADMIN_SECTIONS];
  return access.memberships.some((m) => m.role === "OWNER") ? ["projects"] : [];
}

/** Whether the caller may manage a project's members (its OWNER, or ADMIN). */
export function mayManageMembers(access: Access | null | undefined, projectId: string): boolean {
  return isAdmin(access) || Boolean(access?.memberships.some((m) => m.projectId === projectId && m.role === "OWNER"));
}
