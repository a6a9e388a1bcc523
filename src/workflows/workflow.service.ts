/** Reading workflows, tasks and runs; cancelling them. Framework-free: throws AppErrors only. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { ChangeSet, checkText, checkUuid, ForbiddenError, hasProjectRole, isAdmin, MAX_NAME_CHARS, NotFoundError, ProjectRole, readableProjectIds, type RunState, type Viewer } from "../kernel/index.js";
import { entityData, json, query, retryOnDeadlock } from "../db/sql.js";
import { cancelRuns } from "../runs/index.js";
import { Task } from "./task.entity.js";
import { Workflow } from "./workflow.entity.js";

/** Whether the viewer may read a workflow's project (workflows from before projects: ADMIN only). */
export function canReadWorkflow(viewer: Viewer, projectId: string | null): boolean {
  return projectId ? hasProjectRole(viewer, projectId, ProjectRole.VIEWER) : isAdmin(viewer);
}

/** Checks the viewer may change the project's work (RESEARCHER or more); it could read it already. */
function checkCanChange(viewer: Viewer, projectId: string | null, what: string): void {
  const allowed = projectId ? hasProjectRole(viewer, projectId, ProjectRole.RESEARCHER) : isAdmin(viewer);
  if (!allowed) throw ForbiddenError.action(what, "RESEARCHER in the workflow's project");
}

/** A workflow the viewer may read; NOT_FOUND otherwise, whether or not it exists. */
export async function getWorkflow(em: EntityManager, id: string, viewer: Viewer): Promise<Workflow> {
  checkUuid("id", id);
  const workflow = await em.findOne(Workflow, { id });
  if (!workflow || !canReadWorkflow(viewer, workflow.projectId)) throw NotFoundError.entity("Workflow", id);
  return workflow;
}

/** A task the viewer may read (through its workflow's project); NOT_FOUND otherwise. */
export async function getTask(em: EntityManager, id: string, viewer: Viewer): Promise<Task> {
  return (await getTaskWithProject(em, id, viewer)).task;
}

async function getTaskWithProject(em: EntityManager, id: string, viewer: Viewer): Promise<{ task: Task; projectId: string | null }> {
  checkUuid("id", id);
  const task = await em.findOne(Task, { id });
  const [workflow] = task ? await query<{ project_id: string | null }>(em, `select project_id from workflow where id = ?`, [task.workflowId]) : [];
  if (!task || !workflow || !canReadWorkflow(viewer, workflow.project_id)) throw NotFoundError.entity("Task", id);
  return { task, projectId: workflow.project_id };
}

export interface WorkflowFilter {
  /** A project id. */
  project?: string | null;
  states?: RunState[] | null;
  submittedBy?: string | null;
  submittedAfter?: Date | null;
  submittedBefore?: Date | null;
}

/** Newest first; `after` is the (submittedAt, id) of the last workflow of the previous page. */
export async function listWorkflows(
  em: EntityManager,
  viewer: Viewer,
  filter: WorkflowFilter,
  first: number,
  after: { submittedAt: Date; id: string } | null,
): Promise<{ workflows: Workflow[]; hasNextPage: boolean }> {
  const where: Record<string, unknown>[] = [];
  const readable = readableProjectIds(viewer);
  if (readable) where.push({ projectId: { $in: readable } });
  if (filter.project) {
    checkUuid("filter.project", filter.project);
    where.push({ projectId: filter.project });
  }
  if (filter.states?.length) where.push({ state: { $in: filter.states } });
  if (filter.submittedBy) {
    checkText("filter.submittedBy", filter.submittedBy, MAX_NAME_CHARS);
    where.push({ submittedBy: filter.submittedBy });
  }
  if (filter.submittedAfter) where.push({ submittedAt: { $gte: filter.submittedAfter } });
  if (filter.submittedBefore) where.push({ submittedAt: { $lt: filter.submittedBefore } });
  if (after) where.push({ $or: [{ submittedAt: { $lt: after.submittedAt } }, { submittedAt: after.submittedAt, id: { $lt: after.id } }] });
  const workflows = await em.find(Workflow, where.length ? { $and: where } : {}, { orderBy: { submittedAt: "desc", id: "desc" }, limit: first + 1 });
  return { workflows: workflows.slice(0, first), hasNextPage: workflows.length > first };
}

async function cancelWhere(em: EntityManager, column: "task_id" | "workflow_id", id: string, reason: string): Promise<ChangeSet> {
  // Concurrent node reports lock the same runs in another order: a deadlock victim simply runs again.
  return retryOnDeadlock(async () => {
    const changes = new ChangeSet();
    await em.fork().transactional(async (tem) => {
      const rows = await query<{ id: string }>(tem, `select id from run where ${column} = ? and state in ('PENDING','QUEUED','ACCEPTED','RUNNING')`, [id]);
      const taskIds = column === "task_id" ? [id] : (await query<{ id: string }>(tem, `select id from task where workflow_id = ?`, [id])).map((r) => r.id);
      await cancelRuns(tem, rows.map((r) => r.id), reason, changes, taskIds);
    });
    return changes;
  });
}

export async function cancelTask(em: EntityManager, id: string, viewer: Viewer): Promise<{ task: Task; changes: ChangeSet }> {
  const { projectId } = await getTaskWithProject(em, id, viewer);
  checkCanChange(viewer, projectId, "cancel this task");
  const changes = await cancelWhere(em, "task_id", id, "cancelled by a user");
  return { task: await getTask(em.fork(), id, viewer), changes };
}

export async function cancelWorkflow(em: EntityManager, id: string, viewer: Viewer): Promise<{ workflow: Workflow; changes: ChangeSet }> {
  const workflow = await getWorkflow(em, id, viewer);
  checkCanChange(viewer, workflow.projectId, "cancel this workflow");
  const changes = await cancelWhere(em, "workflow_id", id, "cancelled by a user");
  return { workflow: await getWorkflow(em.fork(), id, viewer), changes };
}

/** The task for retryTask: readable, and changeable by the viewer. */
export async function getTaskToChange(em: EntityManager, id: string, viewer: Viewer, what: string): Promise<Task> {
  const { task, projectId } = await getTaskWithProject(em, id, viewer);
  checkCanChange(viewer, projectId, what);
  return task;
}

/**
 * Batch loaders' queries: one statement for any number of keys, as plain records with the
 * entity's shape (a workflow's graph reads thousands; hydrating entities costs more than the SQL).
 */
export async function tasksByIds(em: EntityManager, ids: readonly string[]): Promise<Task[]> {
  const rows = await query(em, `select * from task where id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`, [json(ids)]);
  return entityData(em, Task, rows);
}

export async function tasksByWorkflowIds(em: EntityManager, ids: readonly string[]): Promise<Task[]> {
  const rows = await query(em, `select * from task where workflow_id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) order by created_at, key`, [json(ids)]);
  return entityData(em, Task, rows);
}
