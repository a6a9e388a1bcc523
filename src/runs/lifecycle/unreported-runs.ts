/**
 * Runs a live node no longer holds. Every heartbeat lists all the runs its node holds: active,
 * delivered and waiting for a slot, or ended with the terminal report not yet confirmed by the
 * broker. A dispatched run missing from `minHeartbeats` consecutive heartbeats, each sent after the
 * run's last reported change, for longer than `graceMs`, is settled: an ACCEPTED or RUNNING run
 * fails NODE_LOST (and is retried per policy); a QUEUED run is dispatched again, as the same
 * attempt, if its node's queue is seen empty and the node goes on leaving it out (the caller asks
 * the broker).
 *
 * Why the same attempt: the agent journals (run, attempt) before it acknowledges a dispatch and
 * treats any later delivery of a journaled pair as a duplicate, so a late copy of the original can
 * never run a second time. A new attempt would be a different pair: a late original would run next
 * to it.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import type { HeartbeatEvent } from "../../messaging/contracts.js";
import { json, query } from "../../db/sql.js";
import type { ChangeSet } from "../../kernel/index.js";
import { rowToRun, type RunRecord } from "../run.mapper.js";
import { settleRuns } from "./follow-ups.js";
import { enqueueDispatch } from "./node-messages.js";
import { fromStates } from "./table.js";

export interface UnreportedRunOptions {
  /** Consecutive heartbeats of a live node that must leave the run out. */
  minHeartbeats: number;
  /** Least time since the first of them (for a QUEUED run, also since it was dispatched). */
  graceMs: number;
}

/**
 * Counts, for every dispatched run of each heartbeating node, the heartbeats in a row that did not
 * list it (one per node per batch: its newest heartbeat), and resets the count of runs listed.
 * Heartbeats of agents that do not list everything they hold (no `waitingRuns`/`unreportedRuns`)
 * count nothing.
 */
export async function countUnreportedRuns(em: EntityManager, heartbeats: HeartbeatEvent[]): Promise<void> {
  const newest = new Map<string, HeartbeatEvent>();
  for (const hb of heartbeats) {
    if (hb.waitingRuns === undefined || hb.unreportedRuns === undefined) continue;
    const seen = newest.get(hb.nodeId);
    if (!seen || seen.at < hb.at) newest.set(hb.nodeId, hb);
  }
  if (newest.size === 0) return;
  const beats = [...newest.values()].map((hb) => ({
    node_id: hb.nodeId,
    at: hb.at,
    held: [...hb.activeRuns, ...(hb.waitingRuns ?? []), ...(hb.unreportedRuns ?? [])].map((r) => `${r.runId.toLowerCase()}:${r.attempt}`),
  }));
  await query(
    em,
    `with seen as (
       select r.id, x.at, x.held @> jsonb_build_array(r.id::text || ':' || r.attempt) as listed
       from jsonb_to_recordset(?::jsonb) as x(node_id text, at timestamptz, held jsonb)
       join run r on r.node_id = x.node_id and r.state in ('QUEUED', 'ACCEPTED', 'RUNNING') and r.dispatched_at is not null
     )
     update run r set
       unreported_heartbeats = case when s.listed then 0 else r.unreported_heartbeats + 1 end,
       unreported_since = case when s.listed then null else coalesce(r.unreported_since, now()) end,
       queue_empty_at = case when s.listed then null else r.queue_empty_at end
     from seen s
     where r.id = s.id and r.state in ('QUEUED', 'ACCEPTED', 'RUNNING')
       and case when s.listed then r.unreported_heartbeats > 0 or r.unreported_since is not null or r.queue_empty_at is not null
         -- A heartbeat the node sent before it accepted or started the run (both times on the
         -- node's clock) may be ingested after that report; it says nothing of the run.
         else s.at > coalesce(greatest(r.accepted_at, r.started_at), '-infinity') end`,
    [json(beats)],
  );
}

/**
 * Fails ACCEPTED/RUNNING runs that their live (ONLINE) node has left out of its heartbeats past
 * the options with NODE_LOST, then retries per policy. A terminal report already ingested wins
 * (the run is no longer in a `lose` state); one that comes later only fills in usage.
 */
export async function loseUnreportedRuns(em: EntityManager, options: UnreportedRunOptions, changes: ChangeSet): Promise<RunRecord[]> {
  const rows = await query(
    em,
    `update run r set state = 'FAILED', failure_reason = 'NODE_LOST', finished_at = now(),
       message = 'node ' || r.node_id || ' no longer reports this run (missing from its last ' || r.unreported_heartbeats
         || ' heartbeats, for ' || floor(extract(epoch from now() - r.unreported_since))::int || ' s)'
     from node n
     where n.id = r.node_id and n.connectivity = 'ONLINE'
       and r.state in (${fromStates("lose")}) and r.state <> 'QUEUED'
       and r.unreported_heartbeats >= ? and r.unreported_since < now() - (? * interval '1 millisecond')
     returning r.*`,
    [options.minHeartbeats, options.graceMs],
  );
  const lost = rows.map(rowToRun);
  changes.addRuns(lost);
  await settleRuns(em, lost, changes);
  return lost;
}

/** A QUEUED run whose dispatch its live node does not hold. */
export interface UnheldDispatch {
  runId: string;
  nodeId: string;
}

/**
 * The QUEUED runs of live nodes left out of their heartbeats past the options (or, once their
 * node's queue was seen empty, left out of `minHeartbeats` heartbeats since) whose dispatch was
 * published (no copy waits in the outbox); read only. Their node's queue is to be checked next.
 */
export async function findUnheldDispatches(em: EntityManager, options: UnreportedRunOptions, limit = 1_000): Promise<UnheldDispatch[]> {
  return query<UnheldDispatch>(
    em,
    `select r.id as "runId", r.node_id as "nodeId" from run r join node n on n.id = r.node_id
     where r.state in (${fromStates("redispatch")}) and n.connectivity = 'ONLINE' and n.admin_state <> 'DISABLED'
       and ${UNHELD_DISPATCH}
     order by r.dispatched_at limit ?`,
    [...unheldParams(options), limit],
  );
}

/**
 * Acts on what the broker said of the runs queue of these runs' node, asked after
 * `findUnheldDispatches`. The evidence that a dispatch never arrived must all come after an empty
 * queue was seen, since a message that moved from the queue to the agent just before the check is
 * listed only by the agent's next heartbeat. So with an empty queue, a run seen so before and left
 * out since is published again as the same attempt, and any other is marked and counted afresh;
 * with a non-empty queue (it may hold the run) the count starts over. A report or a heartbeat
 * listing the run since the caller looked wins. Returns the runs dispatched again.
 */
export async function settleUnheldDispatches(
  em: EntityManager,
  runIds: string[],
  queueEmpty: boolean,
  options: UnreportedRunOptions,
  changes: ChangeSet,
): Promise<RunRecord[]> {
  if (runIds.length === 0) return [];
  const rows = !queueEmpty
    ? []
    : await query(
        em,
        `update run r set dispatched_at = now(), ${RESET_UNREPORTED},
           message = 'dispatched again: node ' || r.node_id || ' did not hold it (missing from its heartbeats since its queue was seen empty '
             || floor(extract(epoch from now() - r.queue_empty_at))::int || ' s ago)'
         where r.id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) and r.state in (${fromStates("redispatch")})
           and r.queue_empty_at is not null and ${UNHELD_DISPATCH}
         returning r.*`,
        [json(runIds), ...unheldParams(options)],
      );
  const runs = rows.map(rowToRun);
  await enqueueDispatch(em, runs.map((r) => r.id), changes);
  changes.addRuns(runs);
  await query(
    em,
    `update run r set unreported_heartbeats = 0, unreported_since = null, queue_empty_at = case when ? then now() end
     where r.id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) and r.state in (${fromStates("redispatch")}) and ${UNHELD_DISPATCH}`,
    [queueEmpty, json(runIds), ...unheldParams(options)],
  );
  return runs;
}

/** SET clause that starts a run's count of heartbeats leaving it out over (its node listed it, or it changed state). */
export const RESET_UNREPORTED = "unreported_heartbeats = 0, unreported_since = null, queue_empty_at = null";

/** Condition on run `r` shared by the search and the updates; parameters from `unheldParams`. */
const UNHELD_DISPATCH = `r.dispatched_at is not null and r.dispatched_at < now() - (? * interval '1 millisecond')
       and r.unreported_heartbeats >= ? and (r.queue_empty_at is not null or r.unreported_since < now() - (? * interval '1 millisecond'))
       and not exists (select 1 from outbox o where o.sent_at is null and o.payload->>'runId' = r.id::text)`;

function unheldParams(options: UnreportedRunOptions): number[] {
  return [options.graceMs, options.minHeartbeats, options.graceMs];
}
