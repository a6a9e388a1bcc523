import { Arg, Ctx, Field, Float, ID, InputType, Int, ObjectType, Query, Resolver, Root, Subscription, registerEnumType } from "type-graphql";
import type { Context } from "../graphql/context.js";
import type { FinishedRunsPayload } from "../live/live-events.js";
import { mapEvents } from "../live/pubsub.js";
import { topics } from "../live/topics.js";
import { accounting, AccountingDimension, countVisibleFinishedRuns } from "./accounting.service.js";

registerEnumType(AccountingDimension, { name: "AccountingDimension" });

@InputType()
export class AccountingFilter {
  @Field(() => Date, { nullable: true, description: "Runs that finished at or after." }) from?: Date | null;
  @Field(() => Date, { nullable: true, description: "Runs that finished before." }) to?: Date | null;
  @Field(() => [ID], { nullable: true }) nodes?: string[] | null;
  @Field(() => [String], { nullable: true, description: "Tool names or name@version." }) tools?: string[] | null;
  @Field(() => ID, { nullable: true }) workflowId?: string | null;
  @Field(() => ID, { nullable: true, description: "A project id." }) project?: string | null;
}

@ObjectType({ description: "Usage of finished runs for one combination of the grouped dimensions. Times in ms, sizes in bytes." })
export class AccountingRow {
  @Field(() => ID, { nullable: true }) node!: string | null;
  @Field(() => String, { nullable: true, description: "name@version" }) tool!: string | null;
  @Field(() => String, { nullable: true, description: "The subject of who submitted." }) user!: string | null;
  @Field(() => String, { nullable: true, description: "UTC day the runs finished, YYYY-MM-DD." }) day!: string | null;
  @Field(() => Int) runs!: number;
  @Field(() => Int) succeeded!: number;
  @Field(() => Int) failed!: number;
  @Field(() => Int) cancelled!: number;
  @Field(() => Float) wallMs!: number;
  @Field(() => Float) cpuUserMs!: number;
  @Field(() => Float) cpuSystemMs!: number;
  @Field(() => Float, { description: "The largest peak memory of one run." }) maxPeakRssBytes!: number;
  @Field(() => Float) logBytes!: number;
  @Field(() => Float, { description: "Size of the runs' sandboxes when they ended, as their nodes measured it." }) outputBytes!: number;
  @Field(() => Float, { description: "Bytes of the runs' output files that left their nodes: stored by the orchestrator (AVAILABLE, or since EXPIRED)." })
  releasedBytes!: number;
}

@ObjectType({ description: "Runs the caller's accounting counts have ended: read `accounting` again." })
export class AccountingUpdate {
  @Field(() => Int, { description: "How many of the caller's runs ended in this change." }) finishedRuns!: number;
  @Field(() => Date) at!: Date;
}

@Resolver()
export class AccountingResolver {
  @Subscription(() => AccountingUpdate, {
    description: "Each committed change in which runs the caller's accounting counts ended (of its projects and the nodes it operates; all for ADMIN).",
    subscribe: ({ context }) => {
      const ctx = context as Context;
      const viewer = ctx.viewer();
      const projectOf = new Map<string, string | null>();
      return mapEvents(ctx.pubsub.subscribe<FinishedRunsPayload>(topics.finishedRuns), async (change) => {
        const finishedRuns = await countVisibleFinishedRuns(ctx.orm.em.fork(), viewer, change.runs, projectOf);
        return finishedRuns > 0 ? { finishedRuns, at: new Date() } : null;
      });
    },
  })
  accountingUpdated(@Root() update: AccountingUpdate): AccountingUpdate {
    return update;
  }

  @Query(() => [AccountingRow], { description: "Usage of finished runs grouped by node, tool, user and/or day: runs of your projects and of the nodes you operate (all for ADMIN)." })
  async accounting(
    @Arg("groupBy", () => [AccountingDimension]) groupBy: AccountingDimension[],
    @Ctx() ctx: Context,
    @Arg("filter", () => AccountingFilter, { nullable: true }) filter?: AccountingFilter | null,
  ): Promise<AccountingRow[]> {
    return accounting(ctx.orm.em.fork(), ctx.viewer(), groupBy, filter ?? {});
  }
}
