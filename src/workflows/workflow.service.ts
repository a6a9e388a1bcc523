/** Reading workflows, tasks and runs; cancelling them. Framework-free: throws AppErrors only. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { ChangeSet, checkText, checkUuid, MAX_NAME_CHARS, NotFoundError, type RunState } from "../kernel/index.js";
import { query } from "../db/sql.js";
import { cancelRuns } from "../runs/index.js";
import { Task } from "./task.entity.js";
import { Workflow } from "./workflow.entity.js";

export async function getWorkflow(em: EntityManager, id: string): Promise<Workflow> {
  checkUuid("id", id);
  const workflow = await em.findOne(Workflow, { id });
  if (!workflow) throw NotFoundError.entity("Workflow", id);
  return workflow;
}

export async function getTask(em: EntityManager, id: string): Promise<Task> {
  checkUuid("id", id);
  const task = await em.findOne(Task, { id });
  if (!task) throw NotFoundError.entity("Task", id);
  return task;
}

export interface WorkflowFilter {
  states?: RunState[] | null;
  submittedBy?: string | null;
  submittedAfter?: Date | null;
  submittedBefore?: Date | null;
}

/** Newest first; `after` is the (submittedAt, id) of the last workflow of the previous page. */
export async function listWorkflows(
  em: EntityManager,
  filter: WorkflowFilter,
  first: number,
  after: { submittedAt: Date; id: string } | null,
): Promise<{ workflows: Workflow[]; hasNextPage: boolean }> {
  const where: Record<string, unknown>[] = [];
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
  const changes = new ChangeSet();
  await em.transactional(async (tem) => {
    const rows = await query<{ id: string }>(tem, `select id from run where ${column} = ? and state in ('PENDING','QUEUED','ACCEPTED','RUNNING')`, [id]);
    const taskIds = column === "task_id" ? [id] : (await query<{ id: string }>(tem, `select id from task where workflow_id = ?`, [id])).map((r) => r.id);
    await cancelRuns(tem, rows.map((r) => r.id), reason, changes, taskIds);
  });
  return changes;
}

export async function cancelTask(em: EntityManager, id: string): Promise<{ task: Task; changes: ChangeSet }> {
  await getTask(em, id);
  const changes = await cancelWhere(em, "task_id", id, "cancelled by a user");
  return { task: await getTask(em.fork(), id), changes };
}

export async function cancelWorkflow(em: EntityManager, id: string): Promise<{ workflow: Workflow; changes: ChangeSet }> {
  await getWorkflow(em, id);
  const changes = await cancelWhere(em, "workflow_id", id, "cancelled by a user");
  return { workflow: await getWorkflow(em.fork(), id), changes };
}

/** Batch loaders' queries: one statement for any number of keys. */
export async function tasksByIds(em: EntityManager, ids: readonly string[]): Promise<Task[]> {
  return em.find(Task, { id: { $in: [...ids] } });
}

export async function tasksByWorkflowIds(em: EntityManager, ids: readonly string[]): Promise<Task[]> {
  return em.find(Task, { workflowId: { $in: [...ids] } }, { orderBy: { createdAt: "asc", key: "asc" } });
}

