import { GraphQLJSONObject } from "graphql-scalars";
import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { maskedEnv } from "../kernel/index.js";
import { topics } from "../live/topics.js";
import { Run } from "./run.entity.js";
import type { RunRecord } from "./run.mapper.js";
import { getRun } from "./run.service.js";
import { Usage } from "./run.types.js";

/** Run's own fields; `task`, `node` and `logs` are resolved by the domains that own those types. */
@Resolver(() => Run)
export class RunResolver {
  @Query(() => Run)
  async run(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Run> {
    return getRun(ctx.orm.em.fork(), id, ctx.viewer());
  }

  @FieldResolver(() => GraphQLJSONObject, { description: "The environment the process gets; values are shown to ADMIN only, others see the names." })
  env(@Root() run: RunRecord, @Ctx() ctx: Context): Record<string, string> {
    return maskedEnv(run.env, ctx.viewer());
  }

  @FieldResolver(() => Usage)
  usage(@Root() run: RunRecord): Usage {
    return {
      wallMs: run.wallMs,
      cpuUserMs: run.cpuUserMs,
      cpuSystemMs: run.cpuSystemMs,
      peakRssBytes: run.peakRssBytes,
      logBytes: run.logBytes,
      outputBytes: run.outputBytes,
      runId: run.id,
    };
  }

  @Subscription(() => Run, {
    description: "Every state change of one run.",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      await getRun(ctx.orm.em.fork(), args.runId as string, ctx.viewer());
      return ctx.pubsub.subscribe(topics.run(args.runId as string));
    },
  })
  runUpdated(@Root() run: Run, @Arg("runId", () => ID) _runId: string): Run {
    return run;
  }
}
