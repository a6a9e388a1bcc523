/**
 * Runs on nodes that went silent: after a grace period their accepted and running runs fail with
 * NODE_LOST (and are retried per policy); a brief disconnect shorter than the grace kills nothing.
 * When the node comes back and reports such a run still alive, the run is adopted instead of
 * being run twice.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import { json, query } from "../../db/sql.js";
import type { ChangeSet } from "../../kernel/index.js";
import { rowToRun, type RunRecord } from "../run.mapper.js";
import { settleRuns } from "./follow-ups.js";
import { enqueueCancel } from "./node-messages.js";
import { fromStates } from "./table.js";
import { RESET_UNREPORTED } from "./unreported-runs.js";

/**
 * Fails ACCEPTED/RUNNING runs of nodes silent for longer than `lostAfterMs` with NODE_LOST (a
 * dispatched run still QUEUED waits in its node's queue and is not lost), then retries per policy.
 */
export async function loseRunsOfSilentNodes(em: EntityManager, lostAfterMs: number, changes: ChangeSet): Promise<RunRecord[]> {
  const rows = await query(
    em,
    `update run r set state = 'FAILED', failure_reason = 'NODE_LOST', finished_at = now(),
       message = 'node ' || r.node_id || ' sent no heartbeat for ' || (?::int / 1000) || ' s'
     from node n
     where n.id = r.node_id and r.state in (${fromStates("lose")}) and r.state <> 'QUEUED'
       -- A node never heard from gets the same grace, counted from when its run started.
       and coalesce(n.last_heartbeat_at, r.started_at, r.accepted_at, r.dispatched_at) < now() - (? * interval '1 millisecond')
     returning r.*`,
    [lostAfterMs, lostAfterMs],
  );
  const lost = rows.map(rowToRun);
  changes.addRuns(lost);
  await settleRuns(em, lost, changes);
  return lost;
}

/**
 * Fails every run handed to `nodeId` and not finished with NODE_LOST (an administrator disabled the
 * node), tells the node to stop them, then retries per policy.
 */
export async function loseRunsOfNode(em: EntityManager, nodeId: string, message: string, changes: ChangeSet): Promise<RunRecord[]> {
  const rows = await query(
    em,
    `update run set state = 'FAILED', failure_reason = 'NODE_LOST', finished_at = now(), message = ?
     where node_id = ? and dispatched_at is not null and state in (${fromStates("lose")})
     returning *`,
    [message, nodeId],
  );
  const lost = rows.map(rowToRun);
  changes.addRuns(lost);
  await enqueueCancel(em, lost.map((r) => ({ id: r.id, attempt: r.attempt, nodeId: r.nodeId })), "the node was disabled", changes);
  await settleRuns(em, lost, changes);
  return lost;
}

interface Reported {
  id: string;
  attempt: number;
  node_id: string;
  task_id: string;
  state: string;
  failure_reason: string | null;
  node_disabled: boolean;
  newer_started: boolean;
}

/** A run attempt a node says it is executing. */
export interface ReportedActiveRun {
  runId: string;
  attempt: number;
  nodeId: string;
}

/**
 * Reconciles the runs nodes say are alive: a run failed as NODE_LOST whose retry has not started
 * is adopted (back to RUNNING; the waiting retry is withdrawn); one that was superseded by a started
 * retry, or cancelled here, is told to stop. Recomputes the adopted runs' tasks; returns them.
 */
export async function adoptReportedRuns(em: EntityManager, active: ReportedActiveRun[], changes: ChangeSet): Promise<RunRecord[]> {
  const reported = active.map((r) => ({ run_id: r.runId, attempt: r.attempt, node_id: r.nodeId }));
  if (reported.length === 0) return [];
  const rows = await query<Reported>(
    em,
    `select r.id, r.attempt, r.node_id, r.task_id, r.state, r.failure_reason, nd.admin_state = 'DISABLED' as node_disabled,
       exists (select 1 from run n where n.task_id = r.task_id and n.node_id = r.node_id and n.attempt > r.attempt
               and n.state not in ('PENDING', 'QUEUED')) as newer_started
     from jsonb_to_recordset(?::jsonb) as x(run_id uuid, attempt int, node_id text)
     join run r on r.id = x.run_id and r.attempt = x.attempt and r.node_id = x.node_id
     join node nd on nd.id = r.node_id
     where r.state in ('FAILED', 'CANCELLED', 'SUCCEEDED', 'SKIPPED')`,
    [json(reported)],
  );
  // A disabled node's runs were stopped on purpose: they are told to stop again, never adopted.
  const adopt = rows.filter((r) => r.state === "FAILED" && r.failure_reason === "NODE_LOST" && !r.newer_started && !r.node_disabled);
  const stop = rows.filter((r) => !adopt.includes(r) && r.state !== "SUCCEEDED");
  await enqueueCancel(em, stop.map((r) => ({ id: r.id, attempt: r.attempt, nodeId: r.node_id })), "this attempt was given up; a newer one runs instead", changes);
  if (adopt.length === 0) return [];
  const withdrawn = await query<{ id: string; attempt: number; node_id: string; dispatched: boolean }>(
    em,
    `delete from run n using run r
     where r.id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
       and n.task_id = r.task_id and n.node_id = r.node_id and n.attempt > r.attempt and n.state in ('PENDING', 'QUEUED')
     returning n.id, n.attempt, n.node_id, n.dispatched_at is not null as dispatched`,
    [json(adopt.map((r) => r.id))],
  );
  await enqueueCancel(
    em,
    withdrawn.filter((w) => w.dispatched).map((w) => ({ id: w.id, attempt: w.attempt, nodeId: w.node_id })),
    "withdrawn: the earlier attempt is still running and was adopted",
    changes,
  );
  const adopted = await query(
    em,
    `update run set state = 'RUNNING', failure_reason = null, finished_at = null, ${RESET_UNREPORTED},
       message = 'adopted: the node came back and reported the run still running'
     where id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
       and state in (${fromStates("adopt")}) and failure_reason = 'NODE_LOST'
     returning *`,
    [json(adopt.map((r) => r.id))],
  );
  const runs = adopted.map(rowToRun);
  changes.addRuns(runs);
  await settleRuns(em, runs, changes);
  return runs;
}
