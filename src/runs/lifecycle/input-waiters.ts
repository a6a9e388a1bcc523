/**
 * Dependents waiting for their inputs: when artifacts of upstream runs change state (recorded,
 * AVAILABLE, REJECTED, EXPIRED, FAILED), the PENDING tasks that take files from those runs' tasks
 * are released or refused.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import { json, query } from "../../db/sql.js";
import type { ChangeSet } from "../../kernel/index.js";
import { refreshTasks, releaseOrRefuse } from "./progress.js";

/**
 * Settles the PENDING dependents, with declared inputs and every upstream task SUCCEEDED, of the
 * tasks of `upstreamRunIds`. Call in the transaction that changed those runs' artifacts, after their
 * manifests are stored.
 */
export async function settleInputWaiters(em: EntityManager, upstreamRunIds: readonly string[], changes: ChangeSet): Promise<void> {
  if (upstreamRunIds.length === 0) return;
  // Locked, so that of two transactions each making one of a dependent's files AVAILABLE, the
  // second waits for the first to commit and then sees both (each statement takes a new snapshot).
  const rows = await query<{ id: string }>(
    em,
    `select t.id from task t
     where t.id in (
         select d.id from run ur join task ut on ut.id = ur.task_id
           join task d on d.workflow_id = ut.workflow_id and d.depends_on_ids @> jsonb_build_array(ut.id::text)
         where ur.id in (select value::uuid from jsonb_array_elements_text(?::jsonb)))
       and t.state = 'PENDING' and jsonb_array_length(t.inputs) > 0
       and not exists (select 1 from task u where u.id in (select value::uuid from jsonb_array_elements_text(t.depends_on_ids)) and u.state <> 'SUCCEEDED')
     order by t.id
     for update of t`,
    [json([...new Set(upstreamRunIds)])],
  );
  if (rows.length === 0) return;
  const settled = await releaseOrRefuse(em, rows.map((r) => r.id), true, changes);
  if (settled.length > 0) await refreshTasks(em, settled, changes);
}
