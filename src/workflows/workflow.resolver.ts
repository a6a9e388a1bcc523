import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { checkUuid, readableProjectIds } from "../kernel/index.js";
import { connection, decodeCursor, LIST_PAGE, listCost, pageCost, pageSize } from "../graphql/connection.js";
import type { SubmittedWorkflowPayload, WorkflowEventPayload } from "../live/live-events.js";
import { filterEvents } from "../live/pubsub.js";
import { topics } from "../live/topics.js";
import { Task } from "./task.entity.js";
import { submitWorkflow } from "./submit.js";
import { Workflow } from "./workflow.entity.js";
import { SubmitWorkflowInput, WorkflowConnection, WorkflowEvent, WorkflowFilter } from "./workflow.inputs.js";
import { cancelWorkflow, getWorkflow, listWorkflows } from "./workflow.service.js";

type WorkflowCursor = { at: string; id: string };
const isWorkflowCursor = (v: unknown): v is WorkflowCursor =>
  typeof v === "object" && v !== null && typeof (v as WorkflowCursor).at === "string" && typeof (v as WorkflowCursor).id === "string";

/** Assumed tasks of a workflow when estimating a query's cost; the real number is bounded by the input limits. */
const TASKS_ESTIMATE = 100;

@Resolver(() => Workflow)
export class WorkflowResolver {
  @Query(() => Workflow)
  async workflow(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Workflow> {
    return getWorkflow(ctx.orm.em.fork(), id, ctx.viewer());
  }

  @Query(() => WorkflowConnection, { description: "Newest first.", complexity: pageCost(LIST_PAGE) })
  async workflows(
    @Ctx() ctx: Context,
    @Arg("filter", () => WorkflowFilter, { nullable: true }) filter?: WorkflowFilter | null,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
    @Arg("after", () => String, { nullable: true }) after?: string | null,
  ) {
    const cursor = decodeCursor(after, isWorkflowCursor);
    const page = await listWorkflows(ctx.orm.em.fork(), ctx.viewer(), filter ?? {}, pageSize(first, LIST_PAGE), cursor && { submittedAt: new Date(cursor.at), id: cursor.id });
    return connection(page.workflows, page.hasNextPage, (w) => ({ at: w.submittedAt.toISOString(), id: w.id }));
  }

  @Mutation(() => Workflow, { description: "Validates the whole graph and accepts it atomically, or stores nothing." })
  async submitWorkflow(@Arg("input", () => SubmitWorkflowInput) input: SubmitWorkflowInput, @Ctx() ctx: Context): Promise<Workflow> {
    const result = await submitWorkflow(ctx.orm.em.fork(), input, ctx.viewer(), { maxRunsPerWorkflow: ctx.maxRunsPerWorkflow });
    ctx.afterCommit(result.changes);
    return result.workflow;
  }

  @Mutation(() => Workflow, { description: "Cancels every run not yet finished; running processes are killed on their nodes." })
  async cancelWorkflow(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Workflow> {
    const { workflow, changes } = await cancelWorkflow(ctx.orm.em.fork(), id, ctx.viewer());
    ctx.afterCommit(changes);
    return workflow;
  }

  @FieldResolver(() => [Task], { description: "The whole graph, loaded in batches.", complexity: listCost(TASKS_ESTIMATE) })
  async tasks(@Root() workflow: Workflow, @Ctx() ctx: Context): Promise<Task[]> {
    return ctx.loaders.tasksOfWorkflow.load(workflow.id);
  }

  @Subscription(() => WorkflowEvent, {
    description: "State changes of the workflow, its tasks and its runs.",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      checkUuid("workflowId", args.workflowId as string);
      await getWorkflow(ctx.orm.em.fork(), args.workflowId as string, ctx.viewer());
      return ctx.pubsub.subscribe(topics.workflow(args.workflowId as string));
    },
  })
  workflowEvents(@Root() event: WorkflowEventPayload, @Arg("workflowId", () => ID) _workflowId: string): WorkflowEvent {
    return event as WorkflowEvent;
  }

  @Subscription(() => Workflow, {
    description: "Workflows submitted from now on, in the projects the caller may read (those of the workflows query), or in one of them.",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const project = args.project as string | null | undefined;
      if (project) checkUuid("project", project);
      const readable = readableProjectIds(ctx.viewer());
      const all = ctx.pubsub.subscribe<SubmittedWorkflowPayload>(topics.submittedWorkflows);
      return filterEvents(all, (w) => (!project || w.projectId === project) && (readable === null || (w.projectId !== null && readable.includes(w.projectId))));
    },
  })
  async workflowSubmitted(
    @Root() submitted: SubmittedWorkflowPayload,
    @Ctx() ctx: Context,
    @Arg("project", () => ID, { nullable: true }) _project?: string | null,
  ): Promise<Workflow> {
    return getWorkflow(ctx.orm.em.fork(), submitted.id, ctx.viewer());
  }
}
