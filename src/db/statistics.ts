/**
 * Keeps PostgreSQL's statistics of the run and task tables current after submissions that grew
 * them by a large part, as autovacuum would a minute later. Until a table is analysed again, its
 * statistics describe it as it was: in a young database that just stored a large workflow,
 * `run.task_id` still counts a few tasks, so reading one task's runs looks like reading a quarter
 * of the table and is planned as a scan of all of it (the dashboard's graph read all 100,032 rows
 * of `run` to return 24, measured on the data of test/db/stale-statistics.test.ts). The hot paths
 * do not depend on it (they look runs up by id); the API's reads by task and workflow do. Tested
 * in test/db/run-statistics.test.ts.
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import { query } from "./sql.js";
import { createLoop } from "../loop.js";
import type { Logger } from "../logger.js";

export interface RunStatisticsOptions {
  /** Runs created since the last ANALYZE below which nothing is looked at. @default 1_000 */
  minRuns?: number;
  /** Part of the run table they must make, as autovacuum's analyze scale factor. @default 0.1 */
  growthFraction?: number;
  /** Longest an ANALYZE may take. @default 60_000 // 1 minute */
  timeoutMs?: number;
}

export interface RunStatistics {
  /** Notes runs committed by a submission; analyses run and task once they grew by a large part. */
  runsCreated(count: number): void;
  /** Resolves once an ANALYZE under way has finished; none starts after. */
  stop(): Promise<void>;
}

export function createRunStatistics(orm: MikroORM, logger: Logger, options: RunStatisticsOptions = {}): RunStatistics {
  const minRuns = options.minRuns ?? 1_000;
  const growthFraction = options.growthFraction ?? 0.1;
  const timeoutMs = options.timeoutMs ?? 60_000;
  /** Runs created since this instance last analysed. */
  let created = 0;

  const loop = createLoop({
    name: "table statistics",
    // Woken by submissions; the interval only retries a failed ANALYZE.
    intervalMs: 60_000,
    logger,
    pass: async () => {
      if (created < minRuns) return false;
      const em = orm.em.fork();
      // reltuples is -1 until the table was first analysed.
      const [table] = await query<{ runs: number }>(em, `select greatest(reltuples, 0)::float8 as runs from pg_class where oid = 'run'::regclass`);
      if (created < growthFraction * Number(table?.runs ?? 0)) return false;
      const counted = created;
      await em.transactional(async (tem) => {
        await query(tem, `select set_config('statement_timeout', ?, true)`, [`${timeoutMs}ms`]);
        await query(tem, `analyze run, task`);
      });
      created -= counted;
      logger.debug("analysed the run and task tables", { runsCreated: counted, runsBefore: Number(table?.runs ?? 0) });
      return false;
    },
  });

  return {
    runsCreated(count) {
      created += count;
      if (created >= minRuns) loop.wake();
    },
    stop: () => loop.stop(),
  };
}
