/**
 * `fem logs RUN [--follow] [--after-seq N]`: the stored lines after N (all by default), then, with
 * --follow, live ones until the run has ended and every line is shown. Lines print as
 * `<seq> <STREAM> <text>`, or as JSON lines with --json, so a script can resume with
 * `--after-seq <last seq>` and get exactly the lines after it. Given a task's id, the lines of all
 * its runs (task-logs.ts).
 */
import type { CommandContext } from "../context.js";
import { CliError } from "../errors.js";
import { isTerminal, RUN_LOG_PAGE, RUN_LOGS, RUN_STATE, TASK_RUNS, type LogBatch, type LogLine } from "../operations.js";
import { colourState } from "../render.js";
import type { Api } from "../api.js";
import { followUntil } from "../follow-until.js";
import { firstFound } from "../lookup.js";
import { taskLogs, type TaskRuns } from "./task-logs.js";

export interface LogsOptions {
  follow?: boolean;
  afterSeq?: number;
  json?: boolean;
}

interface RunState {
  id: string;
  state: string;
  logLineCount: number;
  node: { id: string };
}

export async function logs(ctx: CommandContext, id: string, options: LogsOptions): Promise<void> {
  const api = await ctx.api();
  const found = await firstFound<{ run: RunState } | { task: TaskRuns }>(id, [
    ["run", () => api.request<{ run: RunState }>(RUN_STATE, { id })],
    ["task", () => api.request<{ task: TaskRuns }>(TASK_RUNS, { id })],
  ]);
  if ("task" in found) {
    if (options.afterSeq !== undefined) throw CliError.usage(`--after-seq takes a run's id: each run of task ${found.task.key} counts its own seq (fem logs RUN --after-seq N)`);
    return taskLogs(ctx, api, found.task, options);
  }
  return runLogs(ctx, api, id, options);
}

async function runLogs(ctx: CommandContext, api: Api, runId: string, options: LogsOptions): Promise<void> {
  let lastSeq = options.afterSeq ?? 0;
  const print = (line: LogLine) => {
    if (line.seq <= lastSeq) return;
    lastSeq = line.seq;
    if (options.json) process.stdout.write(`${JSON.stringify({ runId, ...line })}\n`);
    else ctx.out.line(`${line.seq} ${line.stream} ${line.text}`);
  };
  if (!options.follow) {
    for (;;) {
      const { runLogs } = await api.request<{ runLogs: { nodes: LogLine[]; pageInfo: { hasNextPage: boolean } } }>(RUN_LOG_PAGE, { runId, afterSeq: lastSeq, first: 1000 });
      for (const line of runLogs.nodes) print(line);
      if (!runLogs.pageInfo.hasNextPage || runLogs.nodes.length === 0) return;
    }
  }
  // runLogs replays the stored lines after afterSeq, then stays live.
  const run = await followUntil<{ runLogs: LogBatch }, RunState>(ctx, api, {
    query: RUN_LOGS,
    variables: { runId, afterSeq: lastSeq },
    onData: (data) => data.runLogs.lines.forEach(print),
    async ended() {
      const { run } = await api.request<{ run: RunState }>(RUN_STATE, { id: runId });
      // A run's lines are stored before its final state: once it has ended, logLineCount is final.
      return isTerminal(run.state) && lastSeq >= run.logLineCount ? run : null;
    },
  });
  if (run === null) return;
  ctx.out.note(`run ${runId} on ${run.node.id} ended ${colourState(run.state)}`);
  if (run.state !== "SUCCEEDED") process.exitCode = 1;
}
