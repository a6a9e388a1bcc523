/** `retryTask`: runs a finished task again on all its nodes, and after it everything downstream of it. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { ConflictError } from "../errors.js";
import { json, query } from "../db/sql.js";
import { ChangeSet } from "../runs/change-set.js";
import { rowToRun } from "../runs/run.mapper.js";
import { isTerminalState, RunState } from "../runs/run-state.js";
import { refreshTasks } from "./progress.js";
import { Task } from "./task.entity.js";
import { getTask } from "./workflow.service.js";

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

export async function retryTask(em: EntityManager, taskId: string): Promise<{ task: Task; changes: ChangeSet }> {
  const task = await getTask(em, taskId);
  if (!isTerminalState(task.state)) throw new ConflictError(`task ${task.key} is ${task.state}; only a finished task can be retried`, { taskId });
  const siblings = await em.find(Task, { workflowId: task.workflowId });
  const unmet = siblings.filter((t) => task.dependsOnIds.includes(t.id) && t.state !== RunState.SUCCEEDED);
  if (unmet.length > 0) {
    throw new ConflictError(`task ${task.key} depends on ${unmet.map((t) => t.key).join(", ")}, which did not succeed; retry that first`, { taskId });
  }
  const downstream = downstreamOf(taskId, siblings);
  const changes = new ChangeSet();
  await em.transactional(async (tem) => {
    const rows = await query(
      tem,
      `insert into run (id, task_id, workflow_id, node_id, attempt, state, argv, env, timeout_seconds, created_at, queued_at, log_bytes, log_line_count)
       select gen_random_uuid(), r.task_id, r.workflow_id, r.node_id, r.attempt + 1,
         case when r.task_id = ?::uuid then 'QUEUED' else 'PENDING' end,
         r.argv, r.env, r.timeout_seconds, now(), case when r.task_id = ?::uuid then now() end, 0, 0
       from (select distinct on (task_id, node_id) * from run
             where task_id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
             order by task_id, node_id, attempt desc) r
       where r.state in ('SUCCEEDED', 'FAILED', 'CANCELLED', 'SKIPPED')
       returning *`,
      [taskId, taskId, json([taskId, ...downstream])],
    );
    changes.addRuns(rows.map(rowToRun));
    await refreshTasks(tem, [taskId, ...downstream], changes);
  });
  return { task: await getTask(em.fork(), taskId), changes };
}
