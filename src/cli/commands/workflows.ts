/** `fem submit`, `fem status`, `fem cancel`, `fem retry`. */
import type { CommandContext } from "../context.js";
import { readDocument } from "../documents.js";
import { CliError } from "../errors.js";
import { followWorkflow } from "../follow.js";
import { CANCEL_WORKFLOW, RETRY_TASK, SUBMIT_WORKFLOW, WORKFLOW, type RunView, type TaskView, type WorkflowView } from "../operations.js";
import { latestRuns, progressOf, whyNot } from "../progress.js";
import { colourState, duration, table } from "../render.js";

export interface SubmitOptions {
  follow?: boolean;
  project?: string;
  json?: boolean;
}

export async function submit(ctx: CommandContext, file: string, options: SubmitOptions): Promise<void> {
  const input = await readDocument(file, "workflow");
  if (options.project) input.project = options.project;
  const api = await ctx.api();
  const { submitWorkflow: workflow } = await api.request<{ submitWorkflow: WorkflowView }>(SUBMIT_WORKFLOW, { input });
  if (!options.follow) {
    if (options.json) return ctx.out.json(workflow);
    ctx.out.line(`submitted workflow ${workflow.id}${workflow.name ? ` (${workflow.name})` : ""}: ${workflow.tasks.length} tasks, ${progressOf(workflow.tasks).total} runs`);
    ctx.out.note(`follow it with: fem status ${workflow.id}`);
    return;
  }
  ctx.out.note(`submitted workflow ${workflow.id}; following it (Ctrl-C stops following, the workflow goes on)`);
  const result = await followWorkflow(ctx, api, workflow);
  if (result.interrupted) {
    ctx.out.note(`stopped following; workflow ${workflow.id} goes on. Cancel it with: fem cancel ${workflow.id}`);
    process.exitCode = 130;
    return;
  }
  if (result.workflow.state !== "SUCCEEDED") throw new CliError(`workflow ${workflow.id} ${result.workflow.state}: ${whyNot(result.workflow.tasks)}`);
}

function runRows(tasks: TaskView[]): (string | number | null)[][] {
  return tasks.flatMap((task) =>
    task.runs.map((run: RunView) => [
      task.key,
      run.node.id,
      run.attempt,
      colourState(run.state),
      run.exitCode,
      run.logLineCount,
      duration(run.usage.wallMs),
      [run.failureReason, run.message].filter(Boolean).join(": ") || null,
      run.id,
    ]),
  );
}

export function workflowSummary(workflow: WorkflowView): string {
  const { done, total } = progressOf(workflow.tasks);
  const head = `workflow ${workflow.id}${workflow.name ? `  ${workflow.name}` : ""}  ${colourState(workflow.state)}  [${done}/${total} runs done]  submitted ${workflow.submittedAt}${workflow.finishedAt ? `  finished ${workflow.finishedAt}` : ""}`;
  return `${head}\n\n${table(["TASK", "NODE", "ATTEMPT", "STATE", "EXIT", "LINES", "WALL", "REASON", "RUN"], runRows(workflow.tasks))}`;
}

export async function status(ctx: CommandContext, id: string, options: { json?: boolean }): Promise<void> {
  const api = await ctx.api();
  const { workflow } = await api.request<{ workflow: WorkflowView }>(WORKFLOW, { id });
  if (options.json) return ctx.out.json(workflow);
  ctx.out.line(workflowSummary(workflow));
}

export async function cancel(ctx: CommandContext, id: string, options: { json?: boolean }): Promise<void> {
  const api = await ctx.api();
  const { cancelWorkflow: workflow } = await api.request<{ cancelWorkflow: WorkflowView }>(CANCEL_WORKFLOW, { id });
  if (options.json) return ctx.out.json(workflow);
  ctx.out.line(`workflow ${workflow.id} is ${colourState(workflow.state)}; runs still on nodes are being stopped there`);
}

export async function retry(ctx: CommandContext, taskId: string, options: { json?: boolean }): Promise<void> {
  const api = await ctx.api();
  const { retryTask: task } = await api.request<{ retryTask: TaskView & { workflow: { id: string } } }>(RETRY_TASK, { id: taskId });
  if (options.json) return ctx.out.json(task);
  const fresh = [...latestRuns([task]).values()];
  ctx.out.line(`task ${task.key} runs again: ${fresh.map((r) => `${r.node.id} attempt ${r.attempt} ${r.state}`).join(", ")}`);
  ctx.out.note(`follow it with: fem status ${task.workflow.id}`);
}
