import { Arg, Ctx, FieldResolver, Float, ID, Mutation, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../graphql/context.js";
import type { RunOutputsPayload } from "../live/live-events.js";
import { topics } from "../live/topics.js";
import { getRun, Run, Usage, type RunRecord } from "../runs/index.js";
import { ChangeSet } from "../kernel/index.js";
import { Artifact, ArtifactDecision, ArtifactState } from "./artifact.entity.js";
import { artifactsByRunIds, decideArtifactRelease } from "./artifact.service.js";

/** The HTTP path of an artifact's content. */
export const ARTIFACTS_PATH = "/artifacts/";
export const artifactDownloadPath = (id: string): string => `${ARTIFACTS_PATH}${id}`;

/** `Run.outputs`, batched over every run of a request (no query per run). */
@Resolver(() => Run)
export class RunOutputsResolver {
  @FieldResolver(() => [Artifact], { description: "The run's output files as its node listed them when it ended, with their release state." })
  outputs(@Root() run: RunRecord, @Ctx() ctx: Context): Promise<Artifact[]> {
    return ctx.loaders.artifactsOfRun.load(run.id);
  }
}

/** `Usage.releasedBytes`, from the same batched artifacts as `Run.outputs`. */
@Resolver(() => Usage)
export class UsageReleasedResolver {
  @FieldResolver(() => Float, { description: "Bytes of the run's output files that left its node: stored by the orchestrator (AVAILABLE, or since EXPIRED)." })
  async releasedBytes(@Root() usage: Usage, @Ctx() ctx: Context): Promise<number> {
    const artifacts = await ctx.loaders.artifactsOfRun.load(usage.runId);
    return artifacts.filter((a) => a.state === ArtifactState.AVAILABLE || a.state === ArtifactState.EXPIRED).reduce((sum, a) => sum + (a.sizeBytes ?? 0), 0);
  }
}

@Resolver(() => Artifact)
export class ArtifactResolver {
  @Mutation(() => Artifact, {
    description:
      "Approves or rejects the release of a PENDING_REVIEW artifact: for an operator of its node or ADMIN, never a project role. Refused (FORBIDDEN) when the node's policy is local: only its operator at the node decides.",
  })
  async decideArtifactRelease(
    @Arg("id", () => ID) id: string,
    @Arg("decision", () => ArtifactDecision) decision: ArtifactDecision,
    @Arg("comment", () => String, { nullable: true }) comment: string | null | undefined,
    @Ctx() ctx: Context,
  ): Promise<Artifact> {
    const changes = new ChangeSet();
    const artifact = await decideArtifactRelease(ctx.orm.em.fork(), ctx.viewer(), { id, decision, comment: comment ?? null, requestId: ctx.requestId }, changes);
    ctx.afterCommit(changes);
    return artifact;
  }

  @Subscription(() => [Artifact], {
    description:
      "A run's output files, all of them, each time one changes release state (listed when the run ends, decided, transferring, stored, failed, expired). NOT_FOUND when the caller cannot read the run.",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      await getRun(ctx.orm.em.fork(), args.runId as string, ctx.viewer());
      return ctx.pubsub.subscribe(topics.runOutputs(args.runId as string));
    },
  })
  runOutputsUpdated(@Root() payload: RunOutputsPayload, @Arg("runId", () => ID) _runId: string, @Ctx() ctx: Context): Promise<Artifact[]> {
    // Read afresh for each change: a subscription's context (and its loaders) outlives one event.
    return artifactsByRunIds(ctx.orm.em.fork(), [payload.runId]);
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: "Where to download the file once AVAILABLE (`GET`, relative to the API's origin; bearer token; Range requests), else null.",
  })
  downloadUrl(@Root() artifact: Artifact): string | null {
    return artifact.state === ArtifactState.AVAILABLE ? artifactDownloadPath(artifact.id) : null;
  }
}
