/**
 * The live view of `fem submit --follow`: a line at each run's state change with the workflow's
 * progress, and every run's log lines interleaved, each with its node as a coloured prefix. State
 * comes from `workflowEvents`, lines from one `taskLogs` subscription per task. Subscriptions
 * deliver only what happens after they are registered, and the protocol does not say when that is,
 * so the graph is read again whenever things go quiet; lines are kept by seq, so none is shown
 * twice. Once the workflow has ended, the lines a subscription has not delivered yet are read over
 * HTTP, so the view always ends with every line.
 */
import pc from "picocolors";
import type { Api } from "./api.js";
import type { CommandContext } from "./context.js";
import type { CliError } from "./errors.js";
import { isTerminal, RUN_LOG_PAGE, TASK_LOGS, WORKFLOW, WORKFLOW_EVENTS, type LogBatch, type LogLine, type RunView, type WorkflowEvent, type WorkflowView } from "./operations.js";
import { progressOf } from "./progress.js";
import { colourFor, colourState } from "./render.js";

export type FollowResult = { workflow: WorkflowView; interrupted: false } | { workflow: WorkflowView; interrupted: true };

/** After this long without an event, read the graph again. @default 2_000 */
const QUIET_MS = 2_000;
/** How long the end waits for subscriptions to deliver the last lines before reading them over HTTP. @default 2_000 */
const DRAIN_MS = 2_000;
/** Log subscriptions on one socket (the server allows FEM_MAX_SUBSCRIPTIONS_PER_SOCKET, 100 by default). */
const MAX_TASK_LOG_SUBSCRIPTIONS = 90;

export async function followWorkflow(ctx: CommandContext, api: Api, initial: WorkflowView): Promise<FollowResult> {
  const live = api.live();
  const view = createView(ctx, initial);
  let lastEventAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let stopInterrupt = () => undefined as void;
  try {
    return await new Promise<FollowResult>((resolve, reject) => {
      let settled = false;
      let ending = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearInterval(timer);
        stopInterrupt();
        fn();
      };
      const fail = (err: CliError | Error) => settle(() => reject(err));
      const end = async () => {
        if (ending) return;
        ending = true;
        try {
          const finished = await readGraph(api, initial.id);
          view.apply(finished);
          await view.drain(api, finished);
          settle(() => resolve({ workflow: finished, interrupted: false }));
        } catch (err) {
          fail(err as Error);
        }
      };
      const refresh = async () => {
        lastEventAt = Date.now();
        try {
          const graph = await readGraph(api, initial.id);
          view.apply(graph);
          if (isTerminal(graph.state)) await end();
        } catch (err) {
          fail(err as Error);
        }
      };
      stopInterrupt = ctx.onInterrupt(() => settle(() => resolve({ workflow: view.current(), interrupted: true })));
      live.subscribe<{ workflowEvents: WorkflowEvent }>(WORKFLOW_EVENTS, { workflowId: initial.id }, (data) => {
        lastEventAt = Date.now();
        const event = data.workflowEvents;
        if (event.kind === "RUN" && event.run && event.taskId) view.run(event.taskId, event.run);
        if (event.kind === "WORKFLOW" && isTerminal(event.state)) void end();
      }, fail);
      const followed = initial.tasks.slice(0, MAX_TASK_LOG_SUBSCRIPTIONS);
      for (const task of followed) live.subscribe<{ taskLogs: LogBatch }>(TASK_LOGS, { taskId: task.id }, (data) => view.lines(data.taskLogs), fail);
      if (initial.tasks.length > followed.length) ctx.out.note(`the log lines of ${initial.tasks.length - followed.length} more tasks are not streamed; read them with fem logs RUN`);
      timer = setInterval(() => {
        if (!ending && Date.now() - lastEventAt > QUIET_MS) void refresh();
      }, 500);
      void refresh();
    });
  } finally {
    clearInterval(timer);
    await live.dispose();
  }
}

async function readGraph(api: Api, id: string): Promise<WorkflowView> {
  return (await api.request<{ workflow: WorkflowView }>(WORKFLOW, { id })).workflow;
}

interface Tracked {
  taskId: string;
  run: RunView;
  lastSeq: number;
}

function createView(ctx: CommandContext, initial: WorkflowView) {
  const taskKeys = new Map(initial.tasks.map((t) => [t.id, t.key]));
  const runs = new Map<string, Tracked>();
  /** Lines of runs not known yet (a retry whose lines came before its event), shown once it is. */
  const pending = new Map<string, LogLine[]>();
  const colour = colourFor();
  let graph = initial;
  /** Set once the closing line is printed: what the subscriptions still bring is not shown after it. */
  let closed = false;
  const width = Math.max(...initial.tasks.flatMap((t) => t.runs.map((r) => `${r.node.id} ${t.key}`.length)), 10);

  const prefix = (t: Tracked) => {
    const label = `${t.run.node.id} ${taskKeys.get(t.taskId) ?? "?"}${t.run.attempt > 1 ? `#${t.run.attempt}` : ""}`;
    return colour(t.run.node.id, label.padEnd(width));
  };
  const progress = () => {
    const { done, total } = progressOf(graph.tasks.map((task) => ({ id: task.id, runs: task.runs.map((r) => runs.get(r.id)?.run ?? r) })));
    return `[${done}/${total} runs done]`;
  };
  const track = (taskId: string, run: RunView): Tracked => {
    let t = runs.get(run.id);
    if (!t) {
      runs.set(run.id, (t = { taskId, run, lastSeq: 0 }));
      // A run created after the submission (a retry) joins the graph shown.
      const task = graph.tasks.find((x) => x.id === taskId);
      if (task && !task.runs.some((r) => r.id === run.id)) task.runs.push(run);
      const early = pending.get(run.id);
      pending.delete(run.id);
      for (const line of early ?? []) printLine(t, line);
    }
    return t;
  };
  const showState = (t: Tracked, run: RunView, announce: boolean) => {
    const changed = t.run.state !== run.state;
    t.run = { ...t.run, ...run };
    if (!changed && !announce) return;
    const why = [run.failureReason, run.message].filter(Boolean).join(": ");
    ctx.out.line(`${prefix(t)} ${pc.bold("▸")} ${colourState(run.state)}${why ? ` (${why})` : ""}  ${progress()}`);
  };
  for (const task of initial.tasks) for (const run of task.runs) showState(track(task.id, run), run, true);

  function printLine(t: Tracked, line: LogLine): void {
    if (line.seq <= t.lastSeq) return;
    t.lastSeq = line.seq;
    const text = line.stream === "STDERR" ? pc.red(line.text) : line.stream === "SYSTEM" ? pc.dim(line.text) : line.text;
    ctx.out.line(`${prefix(t)} │ ${text}`);
  }

  return {
    current: () => graph,
    run(taskId: string, run: RunView) {
      if (closed) return;
      const t = runs.get(run.id) ?? track(taskId, { ...run, state: "" });
      showState(t, run, false);
    },
    apply(next: WorkflowView) {
      for (const task of next.tasks) {
        taskKeys.set(task.id, task.key);
        for (const run of task.runs) {
          const t = runs.get(run.id) ?? track(task.id, { ...run, state: "" });
          showState(t, run, false);
        }
      }
      graph = { ...next, tasks: next.tasks.map((task) => ({ ...task, runs: task.runs.map((r) => runs.get(r.id)!.run) })) };
    },
    lines(batch: LogBatch) {
      if (closed) return;
      const t = runs.get(batch.runId);
      if (t) for (const line of batch.lines) printLine(t, line);
      else pending.set(batch.runId, [...(pending.get(batch.runId) ?? []), ...batch.lines]);
    },
    /** Waits briefly for subscriptions to deliver every stored line, then reads what is missing. */
    async drain(api: Api, finished: WorkflowView) {
      const missing = () => [...runs.values()].filter((t) => t.lastSeq < t.run.logLineCount);
      const deadline = Date.now() + DRAIN_MS;
      while (missing().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      for (const t of missing()) {
        for (;;) {
          const { runLogs } = await api.request<{ runLogs: { nodes: LogLine[]; pageInfo: { hasNextPage: boolean } } }>(RUN_LOG_PAGE, { runId: t.run.id, afterSeq: t.lastSeq, first: 1000 });
          for (const line of runLogs.nodes) printLine(t, line);
          if (!runLogs.pageInfo.hasNextPage || runLogs.nodes.length === 0) break;
        }
      }
      const { done, total } = progressOf(finished.tasks);
      closed = true;
      ctx.out.line(`workflow ${finished.id} ${colourState(finished.state)}  [${done}/${total} runs done]`);
    },
  };
}
