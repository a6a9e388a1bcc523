/** Loading who a caller is allowed to be: global roles, project roles and operated nodes. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import { BadInputError, checkSubject, ConflictError, ForbiddenError, GlobalRole, isAdmin, NotFoundError, type ProjectRole, type Viewer } from "../kernel/index.js";
import type { Identity } from "./identity.js";
import { isGlobalRole } from "./identity.js";

/**
 * The viewer of an identity: its claimed or token roles plus roles granted here, its projects and
 * its nodes, read in one statement (every request pays for it).
 */
export async function loadViewer(em: EntityManager, identity: Identity): Promise<Viewer> {
  const [row] = await query<{ roles: string[]; projects: [string, ProjectRole][]; nodes: string[] }>(
    em,
    `select
       (select coalesce(json_agg(role), '[]') from role_grant where subject = ?) as roles,
       (select coalesce(json_agg(json_build_array(project_id, role)), '[]') from project_member where subject = ?) as projects,
       (select coalesce(json_agg(node_id), '[]') from node_operator where subject = ?) as nodes`,
    [identity.subject, identity.subject, identity.subject],
  );
  return {
    subject: identity.subject,
    // Operating a node (a grantNodeOperator row) is what makes a NODE_OPERATOR.
    roles: new Set([...identity.roles, ...row.roles.filter(isGlobalRole), ...(row.nodes.length > 0 ? [GlobalRole.NODE_OPERATOR] : [])]),
    projects: new Map(row.projects),
    operatedNodes: new Set(row.nodes),
  };
}

export async function grantedRolesOf(em: EntityManager, subject: string): Promise<GlobalRole[]> {
  const rows = await query<{ role: string }>(em, `select role from role_grant where subject = ?`, [subject]);
  return rows.map((r) => r.role).filter(isGlobalRole);
}

function checkRole(role: string): GlobalRole {
  if (!isGlobalRole(role)) throw BadInputError.field("role", `unknown role ${JSON.stringify(role)}; one of ${Object.values(GlobalRole).join(", ")}`);
  return role;
}

/** Grants a global role to a subject (ADMIN). CONFLICT when it already holds the grant. */
export async function grantRole(em: EntityManager, viewer: Viewer, subject: string, role: string): Promise<GlobalRole[]> {
  if (!isAdmin(viewer)) throw ForbiddenError.action("grant roles", "ADMIN");
  checkSubject("subject", subject);
  const checked = checkRole(role);
  const rows = await query(em, `insert into role_grant (subject, role, granted_by, granted_at) values (?, ?, ?, now()) on conflict do nothing returning role`, [subject, checked, viewer.subject]);
  if (rows.length === 0) throw new ConflictError(`${JSON.stringify(subject)} already holds ${checked}`, { subject, role: checked });
  return grantedRolesOf(em, subject);
}

/** Withdraws a granted role (ADMIN); roles that come from the identity provider's claim stay with it. */
export async function revokeRole(em: EntityManager, viewer: Viewer, subject: string, role: string): Promise<GlobalRole[]> {
  if (!isAdmin(viewer)) throw ForbiddenError.action("revoke roles", "ADMIN");
  checkSubject("subject", subject);
  const checked = checkRole(role);
  const rows = await query(em, `delete from role_grant where subject = ? and role = ? returning role`, [subject, checked]);
  if (rows.length === 0) throw NotFoundError.entity("RoleGrant", `${subject}/${checked}`);
  return grantedRolesOf(em, subject);
}
