import { Arg, Ctx, ID, Int, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { topics } from "../live/topics.js";
import { LogBatch } from "../runs/run.types.js";
import { checkUuid, runsByTaskIds } from "../workflows/workflow.service.js";
import { BadInputError } from "../errors.js";
import { followLogs, type LogBatchPayload } from "./log-follower.js";
import { readLogs } from "./log.service.js";

@Resolver(() => LogBatch)
export class LogResolver {
  @Subscription(() => LogBatch, {
    description: "Stored lines after afterSeq (default 0), then live lines: in order, no gap, no duplicate.",
    subscribe: ({ args, context }) => {
      const ctx = context as Context;
      const runId = args.runId as string;
      checkUuid("runId", runId);
      const afterSeq = (args.afterSeq as number | null | undefined) ?? 0;
      if (!Number.isInteger(afterSeq) || afterSeq < 0) throw BadInputError.field("afterSeq", "must be a non-negative integer");
      return followLogs({
        topic: topics.runLogs(runId),
        pubsub: ctx.pubsub,
        cursors: new Map([[runId, afterSeq]]),
        read: (id, after, limit) => readLogs(ctx.orm.em.fork(), id, after, limit),
        bufferLines: ctx.subscriberBufferSize * 10,
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
      const runs = await runsByTaskIds(ctx.orm.em.fork(), [taskId]);
      return followLogs({
        topic: topics.taskLogs(taskId),
        pubsub: ctx.pubsub,
        cursors: new Map(runs.map((r) => [r.id, 0])),
        read: (id, after, limit) => readLogs(ctx.orm.em.fork(), id, after, limit),
        bufferLines: ctx.subscriberBufferSize * 10,
      });
    },
  })
  taskLogs(@Root() batch: LogBatchPayload, @Arg("taskId", () => ID) _taskId: string): LogBatch {
    return batch;
  }
}
