/**
 * Capacity- and resource-aware dispatch: hands QUEUED runs to their node's queue while the node has
 * a free slot and, for each resource the node's total is known of, room for the run's request (its
 * totals minus the requests of the runs it holds). Highest task priority first and oldest first
 * among equals (across workflows), and only to ACTIVE nodes. A node takes runs strictly in that
 * order: a run that does not fit yet holds back the smaller ones behind it, so large requests are
 * never starved. One pass at a time across all orchestrators (a transaction-scoped advisory lock);
 * a submit makes one pass itself when the lock is free (src/workflows/submit.ts).
 */
import type { EntityManager, MikroORM } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import { ChangeSet, RESOURCE_KINDS, type AfterCommit } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { createLoop, type Loop } from "../loop.js";
import { dispatchRuns } from "./lifecycle/index.js";
import { heldByNodeSql, nodeTotalSql, requestSql } from "./placement.js";

/** Advisory lock key of the scheduler ("FEMS" in ASCII). */
const SCHEDULER_LOCK = 0x46454d53;

/** Running sums of the waiting runs' requests per node, in the order the node takes them. */
const cumulativeRequests = RESOURCE_KINDS.map((k) => `sum(${requestSql(k, "t")}) over queue as "${k}"`).join(",\n         ");
/** A prefix of a node's queue fits where, for every kind, it requests nothing or the node has room for all of it. */
const fits = RESOURCE_KINDS.map((k) => `(w."${k}" = 0 or ${nodeTotalSql(k, "n")} is null or w."${k}" <= ${nodeTotalSql(k, "n")} - coalesce(h."${k}", 0))`).join("\n       and ");

/** Longest a scheduler pass waits for another pass (of another instance, or a submit's) to commit. */
const LOCK_WAIT_MS = 10_000;

/**
 * One pass: how many runs were dispatched, and whether it held the scheduler's lock. With `wait`,
 * it waits for a pass under way (at most LOCK_WAIT_MS), so the changes that woke it are seen; else
 * it gives up at once and does nothing. One statement chooses the runs, whatever their number.
 */
export async function dispatchReadyRuns(em: EntityManager, maxRuns: number, changes: ChangeSet, options: { wait: boolean }): Promise<{ count: number; locked: boolean }> {
  if (options.wait) {
    // Also bounds the pass's own row locks.
    await query(em, `select set_config('lock_timeout', ?, true)`, [`${LOCK_WAIT_MS}ms`]);
    await query(em, `select pg_advisory_xact_lock(?)`, [SCHEDULER_LOCK]);
  } else {
    const [lock] = await query<{ ok: boolean }>(em, `select pg_try_advisory_xact_lock(?) as ok`, [SCHEDULER_LOCK]);
    if (!lock.ok) return { count: 0, locked: false };
  }
  const chosen = await query<{ id: string }>(
    em,
    `with held as (${heldByNodeSql()}),
     waiting as (
       select r.id, r.node_id,
         row_number() over queue as rank,
         ${cumulativeRequests}
       from run r join task t on t.id = r.task_id
       where r.state = 'QUEUED' and r.dispatched_at is null and (r.not_before is null or r.not_before <= now())
       window queue as (partition by r.node_id order by t.priority desc, r.queued_at, r.id rows between unbounded preceding and current row)
     )
     select w.id from waiting w
     join node n on n.id = w.node_id
     left join held h on h.node_id = w.node_id
     where n.admin_state = 'ACTIVE' and w.rank <= n.capacity - coalesce(h.runs, 0)
       and ${fits}
     order by w.rank
     limit ?`,
    [maxRuns],
  );
  return { count: await dispatchRuns(em, chosen.map((c) => c.id), changes), locked: true };
}

export interface SchedulerOptions {
  pollMs: number;
  /** Most runs of a pass after one that found fewer: small, so the relay gets the first ones soon. */
  batchSize: number;
  /** Most runs of a pass while each finds more: a full pass doubles the next, up to this. @default batchSize */
  maxBatchSize?: number;
}

export function createScheduler(orm: MikroORM, options: SchedulerOptions, afterCommit: AfterCommit, logger: Logger): Loop {
  const maxBatchSize = Math.max(options.batchSize, options.maxBatchSize ?? options.batchSize);
  // Each pass ranks every waiting run: for a large backlog, fewer larger passes cost less.
  let passSize = options.batchSize;
  return createLoop({
    name: "scheduler",
    intervalMs: options.pollMs,
    logger,
    pass: async () => {
      const changes = new ChangeSet();
      const maxRuns = passSize;
      const { count } = await orm.em.fork().transactional((em) => dispatchReadyRuns(em, maxRuns, changes, { wait: true }));
      if (count > 0) afterCommit(changes);
      const full = count >= maxRuns;
      passSize = full ? Math.min(maxRuns * 2, maxBatchSize) : options.batchSize;
      return full;
    },
  });
}
