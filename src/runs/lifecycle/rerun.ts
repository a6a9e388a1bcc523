/** retryTask's new attempts: a finished task runs again, and everything downstream after it. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { json, query } from "../../db/sql.js";
import type { ChangeSet } from "../../kernel/index.js";
import { rowToRun, type RunRecord } from "../run.mapper.js";
import { settleRuns } from "./follow-ups.js";
import { fromStates } from "./table.js";

/**
 * A new attempt of the latest attempt of each given task on each of its nodes, where that attempt
 * is finished: QUEUED for `queuedTaskId`, PENDING (waiting for it) for the others. Recomputes
 * the tasks and their workflow.
 */
export async function rerunTasks(em: EntityManager, queuedTaskId: string, taskIds: string[], changes: ChangeSet): Promise<RunRecord[]> {
  const rows = await query(
    em,
    `insert into run (id, task_id, workflow_id, node_id, attempt, state, argv, env, timeout_seconds, created_at, queued_at, log_bytes, log_line_count)
     select gen_random_uuid(), r.task_id, r.workflow_id, r.node_id, r.attempt + 1,
       case when r.task_id = ?::uuid then 'QUEUED' else 'PENDING' end,
       r.argv, r.env, r.timeout_seconds, now(), case when r.task_id = ?::uuid then now() end, 0, 0
     from (select distinct on (task_id, node_id) * from run
           where task_id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
           order by task_id, node_id, attempt desc) r
     where r.state in (${fromStates("rerun")})
     returning *`,
    [queuedTaskId, queuedTaskId, json(taskIds)],
  );
  const runs = rows.map(rowToRun);
  changes.addRuns(runs);
  await settleRuns(em, runs, changes, taskIds);
  return runs;
}
