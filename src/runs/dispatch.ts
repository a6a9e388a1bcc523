/** Writes outgoing node messages into the outbox, in the caller's transaction. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { EXCHANGES, WIRE_VERSION } from "../messaging/contracts.js";
import { json, query } from "../db/sql.js";
import type { ChangeSet } from "./change-set.js";

/**
 * Queues one `run.dispatch` message per run, built in SQL from the run, its task, its tool and the
 * results of its upstream tasks' successful runs (one statement whatever the number of runs).
 */
export async function enqueueDispatch(em: EntityManager, runIds: string[], changes: ChangeSet): Promise<void> {
  if (runIds.length === 0) return;
  await query(
    em,
    `insert into outbox (message_id, exchange, routing_key, payload, created_at, attempts)
     select gen_random_uuid(), ?, r.node_id || '.run',
       jsonb_build_object(
         'type', 'run.dispatch', 'v', ?::int, 'runId', r.id, 'attempt', r.attempt, 'nodeId', r.node_id,
         'workflowId', r.workflow_id, 'taskId', r.task_id,
         'tool', jsonb_build_object('name', tl.name, 'version', tl.version),
         'launcher', tl.launcher, 'image', tl.image,
         'argv', r.argv, 'env', r.env, 'timeoutSeconds', r.timeout_seconds,
         'resultFile', tl.result_file, 'outputs', tl.outputs,
         'upstream', coalesce((
           select jsonb_agg(jsonb_build_object('taskKey', ut.key, 'nodeId', ur.node_id, 'runId', ur.id, 'result', ur.result) order by ut.key, ur.node_id)
           from task ut join run ur on ur.task_id = ut.id
           where ut.id in (select value::uuid from jsonb_array_elements_text(t.depends_on_ids))
             and ur.state = 'SUCCEEDED'
             and ur.attempt = (select max(x.attempt) from run x where x.task_id = ur.task_id and x.node_id = ur.node_id)
         ), '[]'::jsonb)),
       now(), 0
     from run r join task t on t.id = r.task_id join tool tl on tl.id = t.tool_id
     where r.id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
     order by t.priority desc, r.created_at, r.id`,
    [EXCHANGES.dispatch, WIRE_VERSION, json(runIds)],
  );
  changes.outboxWritten = true;
}

/** Queues a `run.cancel` control message for each (run, attempt) on its node. */
export async function enqueueCancel(
  em: EntityManager,
  runs: { id: string; attempt: number; nodeId: string }[],
  reason: string,
  changes: ChangeSet,
): Promise<void> {
  if (runs.length === 0) return;
  const rows = runs.map((r) => ({ run_id: r.id, attempt: r.attempt, node_id: r.nodeId }));
  await query(
    em,
    `insert into outbox (message_id, exchange, routing_key, payload, created_at, attempts)
     select gen_random_uuid(), ?, x.node_id || '.control',
       jsonb_build_object('type', 'run.cancel', 'v', ?::int, 'runId', x.run_id, 'attempt', x.attempt, 'nodeId', x.node_id, 'reason', ?::text),
       now(), 0
     from jsonb_to_recordset(?::jsonb) as x(run_id uuid, attempt int, node_id text)`,
    [EXCHANGES.dispatch, WIRE_VERSION, reason, json(rows)],
  );
  changes.outboxWritten = true;
}
