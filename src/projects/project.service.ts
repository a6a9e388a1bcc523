/** Projects, their members and their nodes. Framework-free: throws AppErrors only. */
import { randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { UniqueConstraintViolationException } from "@mikro-orm/core";
import { json, query } from "../db/sql.js";
import { BadInputError, checkSubject, ConflictError, ForbiddenError, hasProjectRole, isAdmin, NotFoundError, ProjectRole, readableProjectIds, type Viewer } from "../kernel/index.js";
import { Project, ProjectMember } from "./project.entity.js";

const PROJECT_NAME = /^[a-z0-9][a-z0-9-]{1,62}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function validateRole(field: string, role: string): ProjectRole {
  if (!(Object.values(ProjectRole) as string[]).includes(role)) throw BadInputError.field(field, `unknown role ${JSON.stringify(role)}; one of ${Object.values(ProjectRole).join(", ")}`);
  return role as ProjectRole;
}

export interface CreateProjectData {
  name: string;
  description?: string | null;
}

export async function createProject(em: EntityManager, viewer: Viewer, data: CreateProjectData): Promise<Project> {
  if (!isAdmin(viewer)) throw ForbiddenError.action("create a project", "ADMIN");
  if (!PROJECT_NAME.test(data.name)) throw BadInputError.field("name", `${JSON.stringify(data.name)} is not a project name (2-63 lowercase letters, digits and '-', starting with a letter or digit)`);
  if (data.description != null && data.description.length > 2_000) throw BadInputError.field("description", "at most 2000 characters");
  const project = new Project();
  project.id = randomUUID();
  project.name = data.name;
  project.description = data.description ?? null;
  project.createdBy = viewer.subject;
  try {
    await em.insert(Project, project);
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) throw new ConflictError(`project ${JSON.stringify(data.name)} already exists`, { name: data.name });
    throw err;
  }
  return project;
}

/** A project by id or name, if the viewer may read it; otherwise NOT_FOUND. */
export async function getProject(em: EntityManager, viewer: Viewer, idOrName: string): Promise<Project> {
  const project = await em.findOne(Project, UUID.test(idOrName) ? { id: idOrName } : { name: idOrName });
  if (!project || !hasProjectRole(viewer, project.id, ProjectRole.VIEWER)) throw NotFoundError.entity("Project", idOrName);
  return project;
}

/** The projects the viewer may read, by name. */
export async function listProjects(em: EntityManager, viewer: Viewer, first: number, afterName: string | null): Promise<{ projects: Project[]; hasNextPage: boolean }> {
  const readable = readableProjectIds(viewer);
  const where: Record<string, unknown> = {};
  if (readable) where.id = { $in: readable };
  if (afterName) where.name = { $gt: afterName };
  const projects = await em.find(Project, where, { orderBy: { name: "asc" }, limit: first + 1 });
  return { projects: projects.slice(0, first), hasNextPage: projects.length > first };
}

async function ownedProject(em: EntityManager, viewer: Viewer, idOrName: string): Promise<Project> {
  const project = await getProject(em, viewer, idOrName);
  if (!hasProjectRole(viewer, project.id, ProjectRole.OWNER)) throw ForbiddenError.action(`manage the members of project ${project.name}`, "OWNER of the project or ADMIN");
  return project;
}

export async function addProjectMember(em: EntityManager, viewer: Viewer, projectRef: string, subject: string, role: string): Promise<ProjectMember> {
  checkSubject("subject", subject);
  const checked = validateRole("role", role);
  const project = await ownedProject(em, viewer, projectRef);
  const member = new ProjectMember();
  Object.assign(member, { projectId: project.id, subject, role: checked, addedAt: new Date() });
  try {
    await em.insert(ProjectMember, member);
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) throw new ConflictError(`${JSON.stringify(subject)} is already a member of project ${project.name}; change the role instead`, { subject });
    throw err;
  }
  return member;
}

export async function setProjectMemberRole(em: EntityManager, viewer: Viewer, projectRef: string, subject: string, role: string): Promise<ProjectMember> {
  checkSubject("subject", subject);
  const checked = validateRole("role", role);
  const project = await ownedProject(em, viewer, projectRef);
  const rows = await query(em, `update project_member set role = ? where project_id = ? and subject = ? returning *`, [checked, project.id, subject]);
  if (rows.length === 0) throw NotFoundError.entity("ProjectMember", subject);
  return Object.assign(new ProjectMember(), { projectId: project.id, subject, role: checked, addedAt: rows[0].added_at as Date });
}

export async function removeProjectMember(em: EntityManager, viewer: Viewer, projectRef: string, subject: string): Promise<Project> {
  checkSubject("subject", subject);
  const project = await ownedProject(em, viewer, projectRef);
  const rows = await query(em, `delete from project_member where project_id = ? and subject = ? returning subject`, [project.id, subject]);
  if (rows.length === 0) throw NotFoundError.entity("ProjectMember", subject);
  return project;
}

/** Adds a registered node to a project (ADMIN). */
export async function addProjectNode(em: EntityManager, viewer: Viewer, projectRef: string, nodeId: string): Promise<Project> {
  if (!isAdmin(viewer)) throw ForbiddenError.action("add a node to a project", "ADMIN");
  const project = await getProject(em, viewer, projectRef);
  const [node] = await query(em, `select id from node where id = ? and removed_at is null`, [nodeId]);
  if (!node) throw BadInputError.field("nodeId", `unknown node ${JSON.stringify(nodeId)}`, { node: nodeId });
  const rows = await query(em, `insert into project_node (project_id, node_id, added_at) values (?, ?, now()) on conflict do nothing returning node_id`, [project.id, nodeId]);
  if (rows.length === 0) throw new ConflictError(`node ${nodeId} is already in project ${project.name}`, { node: nodeId });
  return project;
}

/** Takes a node out of every project (when it is removed); returns how many it was in. */
export async function removeNodeFromProjects(em: EntityManager, nodeId: string): Promise<number> {
  return (await query(em, `delete from project_node where node_id = ? returning project_id`, [nodeId])).length;
}

export async function removeProjectNode(em: EntityManager, viewer: Viewer, projectRef: string, nodeId: string): Promise<Project> {
  if (!isAdmin(viewer)) throw ForbiddenError.action("remove a node from a project", "ADMIN");
  const project = await getProject(em, viewer, projectRef);
  const rows = await query(em, `delete from project_node where project_id = ? and node_id = ? returning node_id`, [project.id, nodeId]);
  if (rows.length === 0) throw NotFoundError.entity("ProjectNode", nodeId);
  return project;
}

/**
 * The project a workflow is submitted to: the one named, or, when none is named, the caller's
 * only project where it may submit. The caller must be RESEARCHER (or OWNER, or ADMIN) there.
 */
export async function projectForSubmit(em: EntityManager, viewer: Viewer, projectRef: string | null | undefined): Promise<Project> {
  if (projectRef) {
    const project = await getProject(em, viewer, projectRef);
    if (!hasProjectRole(viewer, project.id, ProjectRole.RESEARCHER)) throw ForbiddenError.action(`submit to project ${project.name}`, "RESEARCHER");
    return project;
  }
  const candidates = [...viewer.projects].filter(([, role]) => role !== ProjectRole.VIEWER).map(([id]) => id);
  if (candidates.length !== 1) {
    throw BadInputError.field("project", candidates.length === 0 ? "name the project to submit to (you may submit to none)" : "you take part in several projects: name the one to submit to");
  }
  return getProject(em, viewer, candidates[0]);
}

/** Ids of the project's nodes. */
export async function projectNodeIds(em: EntityManager, projectId: string): Promise<string[]> {
  const rows = await query<{ node_id: string }>(em, `select node_id from project_node where project_id = ? order by node_id`, [projectId]);
  return rows.map((r) => r.node_id);
}

/** Batch loaders' queries: members and node ids of many projects in one statement each. */
export async function membersOfProjects(em: EntityManager, projectIds: readonly string[]): Promise<ProjectMember[]> {
  return em.find(ProjectMember, { projectId: { $in: [...projectIds] } }, { orderBy: { subject: "asc" } });
}

export async function nodeIdsOfProjects(em: EntityManager, projectIds: readonly string[]): Promise<{ projectId: string; nodeId: string }[]> {
  const rows = await query<{ project_id: string; node_id: string }>(
    em,
    `select project_id, node_id from project_node where project_id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) order by node_id`,
    [json(projectIds)],
  );
  return rows.map((r) => ({ projectId: r.project_id, nodeId: r.node_id }));
}

