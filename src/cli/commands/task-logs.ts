/**
 * `fem logs TASK [--follow]`: the lines of every run of a task (every node, every attempt)
 * interleaved, each with its node as a coloured prefix: the stored lines merged by time or, with
 * --follow, the `taskLogs` subscription's (stored, then live) until the task has ended and every
 * line of every run is shown. Lines print as `<node>[#attempt] <seq> <STREAM> <text>`, or as JSON lines.
 */
import type { Api } from "../api.js";
import type { CommandContext } from "../context.js";
import { followUntil } from "../follow-until.js";
import { isTerminal, RUN_LOG_PAGE, TASK_LOGS, TASK_RUNS, type LogBatch, type LogLine, type RunView } from "../operations.js";
import { colourFor, colourState } from "../render.js";

export interface TaskRuns {
  id: string;
  key: string;
  state: string;
  runs: RunView[];
}

async function readTask(api: Api, id: string): Promise<TaskRuns> {
  return (await api.request<{ task: TaskRuns }>(TASK_RUNS, { id })).task;
}

async function storedLines(api: Api, runId: string): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for (;;) {
    const { runLogs } = await api.request<{ runLogs: { nodes: LogLine[]; pageInfo: { hasNextPage: boolean } } }>(RUN_LOG_PAGE, { runId, afterSeq: lines.at(-1)?.seq ?? 0, first: 1000 });
    lines.push(...runLogs.nodes);
    if (!runLogs.pageInfo.hasNextPage || runLogs.nodes.length === 0) return lines;
  }
}

function createPrinter(ctx: CommandContext, json: boolean) {
  const colour = colourFor();
  const runs = new Map<string, RunView>();
  const lastSeq = new Map<string, number>();
  let width = 10;
  return {
    know(run: RunView) {
      runs.set(run.id, run);
      width = Math.max(width, ...[...runs.values()].map((r) => label(r).length));
    },
    known: (runId: string) => runs.has(runId),
    lastSeq: (runId: string) => lastSeq.get(runId) ?? 0,
    print(runId: string, line: LogLine) {
      const run = runs.get(runId)!;
      if (line.seq <= (lastSeq.get(runId) ?? 0)) return;
      lastSeq.set(runId, line.seq);
      if (json) return void process.stdout.write(`${JSON.stringify({ runId, node: run.node.id, attempt: run.attempt, ...line })}\n`);
      ctx.out.line(`${colour(run.node.id, label(run).padEnd(width))} ${line.seq} ${line.stream} ${line.text}`);
    },
  };
}

function label(run: RunView): string {
  return run.attempt > 1 ? `${run.node.id}#${run.attempt}` : run.node.id;
}

export async function taskLogs(ctx: CommandContext, api: Api, task: TaskRuns, options: { follow?: boolean; json?: boolean }): Promise<void> {
  const printer = createPrinter(ctx, options.json ?? false);
  for (const run of task.runs) printer.know(run);
  if (!options.follow) {
    const lines = (await Promise.all(task.runs.map(async (run, order) => (await storedLines(api, run.id)).map((line) => ({ run, order, line })))))
      .flat()
      .sort((x, y) => Date.parse(x.line.at!) - Date.parse(y.line.at!) || x.order - y.order || x.line.seq - y.line.seq);
    for (const { run, line } of lines) printer.print(run.id, line);
    return;
  }
  const ended = await followTask(ctx, api, task, printer);
  if (ended === null) return;
  ctx.out.note(`task ${ended.key} ended ${colourState(ended.state)}`);
  if (ended.state !== "SUCCEEDED") process.exitCode = 1;
}

/** Resolves with the task once it ended and every line of every run was printed; null on Ctrl-C. */
async function followTask(ctx: CommandContext, api: Api, task: TaskRuns, printer: ReturnType<typeof createPrinter>): Promise<TaskRuns | null> {
  /** Lines of a run not known yet (a retry that started after the task was read), shown once it is. */
  const pending = new Map<string, LogLine[]>();
  // taskLogs replays every run's stored lines, then stays live.
  return followUntil<{ taskLogs: LogBatch }, TaskRuns>(ctx, api, {
    query: TASK_LOGS,
    variables: { taskId: task.id },
    onData(data) {
      const { runId, lines } = data.taskLogs;
      if (printer.known(runId)) for (const line of lines) printer.print(runId, line);
      else pending.set(runId, [...(pending.get(runId) ?? []), ...lines]);
    },
    askNow: () => pending.size > 0,
    async ended() {
      const current = await readTask(api, task.id);
      for (const run of current.runs) {
        printer.know(run);
        for (const line of pending.get(run.id) ?? []) printer.print(run.id, line);
        pending.delete(run.id);
      }
      // A run's lines are stored before its final state: once the task has ended, every logLineCount is final.
      return isTerminal(current.state) && current.runs.every((r) => printer.lastSeq(r.id) >= r.logLineCount) ? current : null;
    },
  });
}
