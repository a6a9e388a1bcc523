/** New attempts for runs that failed for a reason their task's retry policy covers. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { json, query } from "../../db/sql.js";
import { RunState, type ChangeSet, type RunSnapshot } from "../../kernel/index.js";
import { rowToRun, type RunRecord } from "../run.mapper.js";
import { fromStates } from "./table.js";

/**
 * Inserts attempt + 1 (QUEUED, not before now + backoff × 2^(attempt-1)) for each failed run whose
 * reason is in its task's `retryOn` and that has attempts left. One statement; idempotent, since
 * (task, node, attempt) is unique and a run that already has a later attempt is skipped.
 */
export async function scheduleRetries(em: EntityManager, runs: RunSnapshot[], changes: ChangeSet): Promise<RunRecord[]> {
  const failed = runs.filter((r) => r.state === RunState.FAILED && r.failureReason).map((r) => r.id);
  if (failed.length === 0) return [];
  const rows = await query(
    em,
    `insert into run (id, task_id, workflow_id, node_id, attempt, state, argv, env, timeout_seconds, created_at, queued_at, not_before, log_bytes, log_line_count)
     select gen_random_uuid(), r.task_id, r.workflow_id, r.node_id, r.attempt + 1, 'QUEUED', r.argv, r.env, r.timeout_seconds, now(), now(),
       now() + ((t.retry->>'backoffSeconds')::float8 * power(2, r.attempt - 1)) * interval '1 second', 0, 0
     from run r join task t on t.id = r.task_id
     where r.id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
       and r.state in (${fromStates("retry")})
       and r.attempt < (t.retry->>'maxAttempts')::int
       and t.retry->'retryOn' @> to_jsonb(r.failure_reason)
       and not exists (select 1 from run later where later.task_id = r.task_id and later.node_id = r.node_id and later.attempt > r.attempt)
     on conflict do nothing
     returning *`,
    [json(failed)],
  );
  const retries = rows.map(rowToRun);
  changes.addRuns(retries);
  if (retries.length > 0) changes.schedule = true;
  return retries;
}

