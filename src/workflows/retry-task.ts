/** `retryTask`: runs a finished task again on all its nodes, and after it everything downstream of it. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { ChangeSet, ConflictError, isTerminalState, RunState, type Viewer } from "../kernel/index.js";
import { rerunTasks } from "../runs/index.js";
import { Task } from "./task.entity.js";
import { getTask, getTaskToChange } from "./workflow.service.js";

/** The tasks that depend on `taskId`, directly or through others. */
export function downstreamOf(taskId: string, tasks: Pick<Task, "id" | "dependsOnIds">[]): string[] {
  const found = new Set<string>();
  let frontier = [taskId];
  while (frontier.length > 0) {
    const next = tasks.filter((t) => !found.has(t.id) && t.dependsOnIds.some((d) => frontier.includes(d))).map((t) => t.id);
    next.forEach((id) => found.add(id));
    frontier = next;
  }
  return [...found];
}

export async function retryTask(em: EntityManager, taskId: string, viewer: Viewer): Promise<{ task: Task; changes: ChangeSet }> {
  const task = await getTaskToChange(em, taskId, viewer, "retry this task");
  if (!isTerminalState(task.state)) throw new ConflictError(`task ${task.key} is ${task.state}; only a finished task can be retried`, { taskId });
  const siblings = await em.find(Task, { workflowId: task.workflowId });
  const unmet = siblings.filter((t) => task.dependsOnIds.includes(t.id) && t.state !== RunState.SUCCEEDED);
  if (unmet.length > 0) {
    throw new ConflictError(`task ${task.key} depends on ${unmet.map((t) => t.key).join(", ")}, which did not succeed; retry that first`, { taskId });
  }
  const downstream = downstreamOf(taskId, siblings);
  const changes = new ChangeSet();
  await em.transactional((tem) => rerunTasks(tem, taskId, [taskId, ...downstream], changes));
  return { task: await getTask(em.fork(), taskId, viewer), changes };
}
