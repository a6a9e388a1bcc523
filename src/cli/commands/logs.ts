/**
 * `fem logs RUN [--follow] [--after-seq N]`: the stored lines after N (all by default), then, with
 * --follow, live ones until the run has ended and every line is shown. Lines print as
 * `<seq> <STREAM> <text>`, or as JSON lines with --json, so a script can resume with
 * `--after-seq <last seq>` and get exactly the lines after it.
 */
import type { CommandContext } from "../context.js";
import { CliError } from "../errors.js";
import { isTerminal, RUN_LOG_PAGE, RUN_LOGS, RUN_STATE, type LogBatch, type LogLine } from "../operations.js";
import { colourState } from "../render.js";
import type { Api } from "../api.js";

export interface LogsOptions {
  follow?: boolean;
  afterSeq?: number;
  json?: boolean;
}

/** Without a line for this long, ask whether the run has ended. @default 1_000 */
const QUIET_MS = 1_000;

interface RunState {
  id: string;
  state: string;
  logLineCount: number;
  node: { id: string };
}

export async function logs(ctx: CommandContext, runId: string, options: LogsOptions): Promise<void> {
  const api = await ctx.api();
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
  const run = await followRun(ctx, api, runId, lastSeq, print, () => lastSeq);
  if (run === null) return;
  ctx.out.note(`run ${runId} on ${run.node.id} ended ${colourState(run.state)}`);
  if (run.state !== "SUCCEEDED") process.exitCode = 1;
}

/** Resolves with the run once it ended and every line was printed; null on Ctrl-C. */
async function followRun(ctx: CommandContext, api: Api, runId: string, afterSeq: number, print: (line: LogLine) => void, lastSeq: () => number): Promise<RunState | null> {
  const live = api.live();
  let timer: NodeJS.Timeout | undefined;
  let stopInterrupt = () => undefined as void;
  try {
    return await new Promise<RunState | null>((resolve, reject) => {
      let lastLineAt = Date.now();
      let checking = false;
      const settle = (fn: () => void) => {
        clearInterval(timer);
        stopInterrupt();
        fn();
      };
      stopInterrupt = ctx.onInterrupt(() => settle(() => resolve(null)));
      // Replays the stored lines after afterSeq, then stays live; never completes by itself.
      live.subscribe<{ runLogs: LogBatch }>(RUN_LOGS, { runId, afterSeq }, (data) => {
        lastLineAt = Date.now();
        for (const line of data.runLogs.lines) print(line);
      }, (err: CliError) => settle(() => reject(err)));
      timer = setInterval(async () => {
        if (checking || Date.now() - lastLineAt < QUIET_MS) return;
        checking = true;
        try {
          const { run } = await api.request<{ run: RunState }>(RUN_STATE, { id: runId });
          // A run's lines are stored before its final state: once it has ended, logLineCount is final.
          if (isTerminal(run.state) && lastSeq() >= run.logLineCount) settle(() => resolve(run));
        } catch (err) {
          settle(() => reject(err));
        } finally {
          checking = false;
          lastLineAt = Date.now();
        }
      }, 200);
    });
  } finally {
    clearInterval(timer);
    await live.dispose();
  }
}
