import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { listCost, pageSize, type PageLimits } from "../graphql/connection.js";
import { Node } from "../nodes/index.js";
import { Run, type RunRecord } from "../runs/index.js";
import { Tool } from "../tools/index.js";
import { Task, type TaskRecord } from "./task.entity.js";
import { Workflow } from "./workflow.entity.js";
import { retryTask } from "./retry-task.js";
import { NotFoundError } from "../kernel/index.js";
import { canReadWorkflow, cancelTask, getTask } from "./workflow.service.js";

/** Assumed entries of a task's lists (runs, nodes, dependencies) when estimating a query's cost. */
const FAN_ESTIMATE = 5;

/** Task.runs: 1,000 runs by default, at most 10,000 (retries add runs past the per-workflow limit). */
const RUNS_PAGE: PageLimits = { fallback: 1_000, max: 10_000 };

@Resolver(() => Task)
export class TaskResolver {
  @Query(() => Task)
  async task(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Task> {
    return getTask(ctx.orm.em.fork(), id, ctx.viewer());
  }

  @Mutation(() => Task, { description: "Cancels the task's unfinished runs; dependents are skipped." })
  async cancelTask(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Task> {
    const { task, changes } = await cancelTask(ctx.orm.em.fork(), id, ctx.viewer());
    ctx.afterCommit(changes);
    return task;
  }

  @Mutation(() => Task, { description: "Runs a finished task again (a new attempt on each node), then everything downstream of it." })
  async retryTask(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Task> {
    const { task, changes } = await retryTask(ctx.orm.em.fork(), id, ctx.viewer());
    ctx.afterCommit(changes);
    return task;
  }

  @FieldResolver(() => Workflow)
  async workflow(@Root() task: TaskRecord, @Ctx() ctx: Context): Promise<Workflow> {
    return (await ctx.loaders.workflow.load(task.workflowId))!;
  }

  @FieldResolver(() => Tool)
  async tool(@Root() task: TaskRecord, @Ctx() ctx: Context): Promise<Tool> {
    return (await ctx.loaders.tool.load(task.toolId))!;
  }

  @FieldResolver(() => [Task], { complexity: listCost(FAN_ESTIMATE) })
  dependsOn(@Root() task: TaskRecord, @Ctx() ctx: Context): Task[] | Promise<Task[]> {
    const isTask = (t: Task | null | Error | undefined): t is Task => t !== undefined && t !== null && !(t instanceof Error);
    // Read with the workflow's tasks: values, not a promise per task.
    const known = task.dependsOnIds.map((id) => ctx.loaders.loaded.task.get(id));
    if (known.every((t) => t !== undefined)) return known.filter(isTask);
    return ctx.loaders.task.loadMany(task.dependsOnIds).then((tasks) => tasks.filter(isTask));
  }

  @FieldResolver(() => [Node], { description: "The nodes the task runs on.", complexity: listCost(FAN_ESTIMATE) })
  async nodes(@Root() task: TaskRecord, @Ctx() ctx: Context): Promise<Node[]> {
    const nodes = await ctx.loaders.node.loadMany(task.nodeIds);
    return nodes.filter((n): n is Node => n instanceof Node);
  }

  @FieldResolver(() => [Run], {
    description: "Every attempt on every node, by node then attempt: the first `first` of them (default 1000, at most 10000).",
    complexity: listCost(FAN_ESTIMATE, RUNS_PAGE),
  })
  runs(@Root() task: TaskRecord, @Ctx() ctx: Context, @Arg("first", () => Int, { nullable: true }) first?: number | null): Promise<Run[]> {
    const size = pageSize(first, RUNS_PAGE);
    return ctx.loaders.runsOfTask.load(task.id).then((runs) => runs.slice(0, size));
  }
}

/** The task a run belongs to (the Run type is the runs domain's; the link is this domain's). */
@Resolver(() => Run)
export class RunTaskResolver {
  /**
   * A node's operator reads the runs on its node but not the rest of their workflow (other nodes'
   * runs, the graph): for a caller who cannot read the workflow, the task is NOT_FOUND.
   */
  @FieldResolver(() => Task)
  async task(@Root() run: RunRecord, @Ctx() ctx: Context): Promise<Task> {
    const workflow = await ctx.loaders.workflow.load(run.workflowId);
    if (!workflow || !canReadWorkflow(ctx.viewer(), workflow.projectId)) throw NotFoundError.entity("Task", run.taskId);
    return (await ctx.loaders.task.load(run.taskId))!;
  }
}
