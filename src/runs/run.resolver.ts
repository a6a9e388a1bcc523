import { Arg, Ctx, FieldResolver, ID, Int, Query, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { connection, pageSize } from "../graphql/connection.js";
import { topics } from "../live/topics.js";
import { readLogs } from "../logs/log.service.js";
import { Node } from "../nodes/node.entity.js";
import { Task } from "../workflows/task.entity.js";
import { checkUuid, getRun } from "../workflows/workflow.service.js";
import { Run } from "./run.entity.js";
import { LogLineConnection, Usage } from "./run.types.js";

@Resolver(() => Run)
export class RunResolver {
  @Query(() => Run)
  async run(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Run> {
    return getRun(ctx.orm.em.fork(), id);
  }

  @FieldResolver(() => Task)
  async task(@Root() run: Run, @Ctx() ctx: Context): Promise<Task> {
    return (await ctx.loaders.task.load(run.taskId))!;
  }

  @FieldResolver(() => Node)
  async node(@Root() run: Run, @Ctx() ctx: Context): Promise<Node> {
    return (await ctx.loaders.node.load(run.nodeId))!;
  }

  @FieldResolver(() => Usage)
  usage(@Root() run: Run): Usage {
    return {
      wallMs: run.wallMs,
      cpuUserMs: run.cpuUserMs,
      cpuSystemMs: run.cpuSystemMs,
      peakRssBytes: run.peakRssBytes,
      logBytes: run.logBytes,
      outputBytes: run.outputBytes,
    };
  }

  @FieldResolver(() => LogLineConnection, { description: "Stored log lines after `afterSeq` (default 0), at most `first` (default 1000)." })
  async logs(
    @Root() run: Run,
    @Ctx() ctx: Context,
    @Arg("afterSeq", () => Int, { nullable: true }) afterSeq?: number | null,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
  ) {
    return logPage(ctx, run.id, afterSeq, first);
  }

  @Query(() => LogLineConnection, { description: "Stored log lines of a run after `afterSeq`; for the next page pass the last line's seq as afterSeq." })
  async runLogs(
    @Arg("runId", () => ID) runId: string,
    @Ctx() ctx: Context,
    @Arg("afterSeq", () => Int, { nullable: true }) afterSeq?: number | null,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
  ) {
    await getRun(ctx.orm.em.fork(), runId);
    return logPage(ctx, runId, afterSeq, first);
  }

  @Subscription(() => Run, {
    description: "Every state change of one run.",
    subscribe: ({ args, context }) => {
      checkUuid("runId", args.runId as string);
      return (context as Context).pubsub.subscribe(topics.run(args.runId as string));
    },
  })
  runUpdated(@Root() run: Run, @Arg("runId", () => ID) _runId: string): Run {
    return run;
  }
}

async function logPage(ctx: Context, runId: string, afterSeq: number | null | undefined, first: number | null | undefined) {
  const size = pageSize(first, 1_000, 10_000);
  const lines = await readLogs(ctx.orm.em.fork(), runId, Math.max(0, afterSeq ?? 0), size + 1);
  return connection(lines.slice(0, size), lines.length > size, (l) => l.seq);
}
