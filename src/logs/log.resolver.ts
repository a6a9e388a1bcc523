import { Arg, Ctx, FieldResolver, ID, Int, Query, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { connection, pageCost, pageSize, type PageLimits } from "../graphql/connection.js";
import { BadInputError, checkUuid } from "../kernel/index.js";
import { topics } from "../live/topics.js";
import { getRun, Run, runsByTaskIds, type RunRecord } from "../runs/index.js";
import { getTask } from "../workflows/index.js";
import { followLogs, type LogBatchPayload } from "./log-follower.js";
import { LogBatch, LogLineConnection } from "./log.types.js";
import { LOG_PAGE_CHARS, readLogs } from "./log.service.js";

/**
 * Live lines a log follower holds before it falls back to the database: room for a few of
 * ingestion's transactions (up to 10,000 lines each); their text is bounded apart (4 MiB).
 */
const logBufferLines = (ctx: Context): number => Math.max(ctx.subscriberBufferSize * 10, 40_000);

/** Log pages: 1,000 lines by default, at most 10,000. */
const LOG_PAGE: PageLimits = { fallback: 1_000, max: 10_000 };

@Resolver(() => LogBatch)
export class LogResolver {
  @Subscription(() => LogBatch, {
    description: "Stored lines after afterSeq (default 0), then live lines: in order, no gap, no duplicate.",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const runId = args.runId as string;
      checkUuid("runId", runId);
      await getRun(ctx.orm.em.fork(), runId, ctx.viewer());
      const afterSeq = (args.afterSeq as number | null | undefined) ?? 0;
      if (!Number.isInteger(afterSeq) || afterSeq < 0) throw BadInputError.field("afterSeq", "must be a non-negative integer");
      return followLogs({
        topic: topics.runLogs(runId),
        pubsub: ctx.pubsub,
        cursors: new Map([[runId, afterSeq]]),
        read: (id, after, limit, maxChars) => readLogs(ctx.orm.em.fork(), id, after, limit, maxChars),
        bufferLines: logBufferLines(ctx),
      });
    },
  })
  runLogs(
    @Root() batch: LogBatchPayload,
    @Arg("runId", () => ID) _runId: string,
    @Arg("afterSeq", () => Int, { nullable: true }) _afterSeq?: number | null,
  ): LogBatch {
    return batch;
  }

  @Subscription(() => LogBatch, {
    description: "The lines of every run of a task (every node, every attempt), stored ones first, then live.",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const taskId = args.taskId as string;
      checkUuid("taskId", taskId);
      await getTask(ctx.orm.em.fork(), taskId, ctx.viewer());
      const runs = await runsByTaskIds(ctx.orm.em.fork(), [taskId]);
      return followLogs({
        topic: topics.taskLogs(taskId),
        pubsub: ctx.pubsub,
        cursors: new Map(runs.map((r) => [r.id, 0])),
        read: (id, after, limit, maxChars) => readLogs(ctx.orm.em.fork(), id, after, limit, maxChars),
        bufferLines: logBufferLines(ctx),
      });
    },
  })
  taskLogs(@Root() batch: LogBatchPayload, @Arg("taskId", () => ID) _taskId: string): LogBatch {
    return batch;
  }
}

/** A run's stored lines, as a field of Run and as the runLogs query. */
@Resolver(() => Run)
export class RunLogsResolver {
  @FieldResolver(() => LogLineConnection, { description: "Stored log lines after `afterSeq` (default 0), at most `first` (default 1000, at most 10000) and about 1 MiB of text.", complexity: pageCost(LOG_PAGE) })
  async logs(
    @Root() run: RunRecord,
    @Ctx() ctx: Context,
    @Arg("afterSeq", () => Int, { nullable: true }) afterSeq?: number | null,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
  ) {
    return logPage(ctx, run.id, afterSeq, first);
  }

  @Query(() => LogLineConnection, {
    description: "Stored log lines of a run after `afterSeq` (at most `first`: default 1000, at most 10000; and about 1 MiB of text); for the next page pass the last line's seq as afterSeq.",
    complexity: pageCost(LOG_PAGE),
  })
  async runLogs(
    @Arg("runId", () => ID) runId: string,
    @Ctx() ctx: Context,
    @Arg("afterSeq", () => Int, { nullable: true }) afterSeq?: number | null,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
  ) {
    await getRun(ctx.orm.em.fork(), runId, ctx.viewer());
    return logPage(ctx, runId, afterSeq, first);
  }
}

async function logPage(ctx: Context, runId: string, afterSeq: number | null | undefined, first: number | null | undefined) {
  const size = pageSize(first, LOG_PAGE);
  const lines = await readLogs(ctx.orm.em.fork(), runId, Math.max(0, afterSeq ?? 0), size + 1, LOG_PAGE_CHARS);
  // A page whose text reached LOG_PAGE_CHARS may have been cut before `first` lines.
  const cutByText = lines.reduce((chars, line) => chars + line.text.length, 0) >= LOG_PAGE_CHARS;
  return connection(lines.slice(0, size), lines.length > size || cutByText, (l) => l.seq);
}
