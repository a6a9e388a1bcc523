/**
 * Capacity-aware dispatch: hands QUEUED runs to their node's queue only while the node has a free
 * slot, highest task priority first and oldest first among equals (across workflows), and only to
 * ACTIVE nodes. One pass at a time across all orchestrators (a transaction-scoped advisory lock).
 */
import type { EntityManager, MikroORM } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import { ChangeSet, type AfterCommit } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { createLoop, type Loop } from "../loop.js";
import { dispatchRuns } from "./lifecycle/index.js";

/** Advisory lock key of the scheduler ("FEMS" in ASCII). */
const SCHEDULER_LOCK = 0x46454d53;

/** One pass: returns how many runs were dispatched. */
export async function dispatchReadyRuns(em: EntityManager, maxRuns: number, changes: ChangeSet): Promise<number> {
  const [lock] = await query<{ ok: boolean }>(em, `select pg_try_advisory_xact_lock(?) as ok`, [SCHEDULER_LOCK]);
  if (!lock.ok) return 0;
  const chosen = await query<{ id: string }>(
    em,
    `with busy as (
       select node_id, count(*)::int as n from run
       where dispatched_at is not null and state in ('QUEUED', 'ACCEPTED', 'RUNNING')
       group by node_id
     ),
     waiting as (
       select r.id, r.node_id,
         row_number() over (partition by r.node_id order by t.priority desc, r.queued_at, r.id) as rank
       from run r join task t on t.id = r.task_id
       where r.state = 'QUEUED' and r.dispatched_at is null and (r.not_before is null or r.not_before <= now())
     )
     select w.id from waiting w
     join node n on n.id = w.node_id
     left join busy b on b.node_id = w.node_id
     where n.admin_state = 'ACTIVE' and w.rank <= n.capacity - coalesce(b.n, 0)
     limit ?`,
    [maxRuns],
  );
  return dispatchRuns(em, chosen.map((c) => c.id), changes);
}

export interface SchedulerOptions {
  pollMs: number;
  batchSize: number;
}

export function createScheduler(orm: MikroORM, options: SchedulerOptions, afterCommit: AfterCommit, logger: Logger): Loop {
  return createLoop({
    name: "scheduler",
    intervalMs: options.pollMs,
    logger,
    pass: async () => {
      const changes = new ChangeSet();
      const count = await orm.em.fork().transactional((em) => dispatchReadyRuns(em, options.batchSize, changes));
      if (count > 0) afterCommit(changes);
      return count >= options.batchSize;
    },
  });
}
