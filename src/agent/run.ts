/**
 * Executes one accepted run with the launcher it names: sandbox, launch, logs, usage, timeout and
 * cancel, then exactly one terminal `run.state` event after all of the run's log lines.
 */
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import type { FailureReasonName, OutputManifest, OutputsPolicy, RunDispatch, RunStateEvent, UsageReport } from "../messaging/contracts.js";
import { toError, withTimeout } from "../shared/index.js";
import { displayArgv, stateEvent, zeroUsage, type RunRef } from "./events.js";
import type { Journal } from "./journal.js";
import type { Launcher, PreparedRun, RunExit, RunLimits, StartedRun } from "./launcher.js";
import { createLogBatcher, type LogBatcher } from "./log-batcher.js";
import { createLogSink, createRunSpool, spoolDirOf, type LogSink } from "./log-spool.js";
import type { AgentLogger } from "./log.js";
import type { Outbox } from "./outbox.js";
import { holdLogs, type HeldLogs } from "./held-logs.js";
import { listOutputs, manifestNotes } from "./outputs.js";
import type { LogsPolicy } from "./policy.js";
import { reportTerminal } from "./report.js";
import type { NodeSecrets } from "./secrets.js";
import { runEnvironment, runLimitsFor, unenforcedRequestsNote } from "./run-spec.js";
import { runDatasets } from "./datasets.js";
import type { NodeDataset } from "./policy.js";
import type { InputFetcher, PlacedInput } from "./inputs.js";
import { measureOutputBytes, prepareRunDir, readResultFile, writeInputsFile } from "./sandbox.js";
import { readStartTicks, type ProcessTreeSampler } from "./usage.js";

export interface RunSettings {
  nodeId: string;
  sandboxDir: string;
  killGraceMs: number;
  logBatchMs: number;
  logBatchBytes: number;
  searchPath: readonly string[];
  /** The node's default limits (FEM_RUN_*), for launchers that enforce them. */
  limits: RunLimits;
  /** The node's datasets (FEM_POLICY_FILE); a run gets those its dispatch names. */
  datasets: readonly NodeDataset[];
  /** Who releases the run's outputs (the policy file's `outputs`), reported with its manifest. */
  outputsPolicy: OutputsPolicy;
  /** `system-only`: stdout and stderr are kept in the sandbox and listed with the outputs (the policy file's `logs`). */
  logsPolicy: LogsPolicy;
}

export interface RunDeps {
  /** The launchers this node offers, by name. */
  launchers: ReadonlyMap<string, Launcher>;
  outbox: Outbox;
  journal: Journal;
  sampler: ProcessTreeSampler;
  log: AgentLogger;
  /** Substituted into the run's env just before it starts; never logged. */
  secrets: NodeSecrets;
  /** Called once the broker confirmed the run's terminal state (its outputs may then leave). */
  onReported?: (terminal: RunStateEvent) => void;
  /** Fetches the input files a dispatch names; a dispatch naming some fails without it. */
  inputs?: InputFetcher;
}

export interface ActiveRun extends RunRef {
  /**
   * Stops the run (SIGTERM to its group, SIGKILL after the grace) and reports it CANCELLED with
   * `reason`, or, with `handBack`, FAILED as NODE_LOST so its retry policy can run it again.
   */
  cancel(reason: string, handBack?: boolean): void;
  /** Resolves once the terminal state is journaled and queued for publishing; never rejects. */
  done: Promise<void>;
  /** SIGKILLs the whole run at once, for a forced exit of the agent. */
  abort(): void;
}

/** Bound on waiting for stdout/stderr to close once the main process exited and its group was killed. */
const STREAM_CLOSE_TIMEOUT_MS = 2_000;
const MAX_TIMER_MS = 2_147_483_647;

type StopReason = { kind: "cancel"; message: string; handBack: boolean } | { kind: "timeout" };
interface Outcome {
  state: RunStateEvent["state"];
  exitCode: number | null;
  failureReason?: FailureReasonName;
  message?: string;
  result?: unknown;
  outputs?: OutputManifest;
  usage: Omit<UsageReport, "logBytes">;
}

/**
 * Starts executing a run that is already journaled as accepted and reported ACCEPTED, in
 * `preparedRunDir` (see `prepareRunDir`) when it was created while the run was being accepted.
 */
export function startRun(dispatch: RunDispatch, settings: RunSettings, deps: RunDeps, preparedRunDir?: Promise<string>): ActiveRun {
  const ref: RunRef = { runId: dispatch.runId, attempt: dispatch.attempt };
  const tag = `run ${dispatch.runId}#${dispatch.attempt}`;
  // Every line is spooled as soon as it is numbered and sent once its spool file is fsynced.
  const spool = createRunSpool(spoolDirOf(settings.sandboxDir, ref.runId, ref.attempt), { log: deps.log });
  const sink = createLogSink(spool, deps.outbox);
  const batcher = createLogBatcher(
    { nodeId: settings.nodeId, runId: ref.runId, attempt: ref.attempt, maxBatchBytes: settings.logBatchBytes, maxBatchMs: settings.logBatchMs },
    { send: (event) => sink.send(event), record: (lines) => spool.append(lines), idle: () => sink.idle(), onIdle: (listener) => sink.onIdle(listener) },
  );
  let stopReason: StopReason | null = null;
  let started: StartedRun | null = null;
  let exited = false;
  let finished = false;
  let agentSentKill = false;
  let killTimer: NodeJS.Timeout | undefined;
  let timeoutTimer: NodeJS.Timeout | undefined;
  // Aborts fetching the run's inputs when it is cancelled before it starts.
  const fetching = new AbortController();

  function signalRun(signal: NodeJS.Signals): void {
    if (started === null) return;
    try {
      started.signal(signal);
    } catch (err) {
      deps.log.warn(`${tag}: ${toError(err).message}`);
    }
  }

  function terminate(): void {
    if (started === null || exited || killTimer) return;
    batcher.system("sending SIGTERM to the run's processes");
    signalRun("SIGTERM");
    killTimer = setTimeout(() => {
      agentSentKill = true;
      batcher.system(`still running ${settings.killGraceMs} ms after SIGTERM: sending SIGKILL to the run's processes`);
      signalRun("SIGKILL");
    }, settings.killGraceMs);
  }

  async function execute(): Promise<Outcome> {
    const launcher = deps.launchers.get(dispatch.launcher);
    if (!launcher) return launchFailed(`node ${settings.nodeId} has no ${dispatch.launcher} launcher`);
    let runDir: string;
    try {
      runDir = await (preparedRunDir ?? prepareRunDir(settings.sandboxDir, ref.runId, ref.attempt));
    } catch (err) {
      return launchFailed(`cannot create the run's sandbox: ${toError(err).message}`);
    }
    const placed = await fetchInputs(runDir);
    if (stopReason?.kind === "cancel") return cancelledBeforeStart(stopReason.message, stopReason.handBack);
    if (!placed.ok) return inputRefused(placed.reason);
    try {
      await writeInputsFile(runDir, dispatch.upstream, placed.placed);
    } catch (err) {
      return launchFailed(`cannot create the run's sandbox: ${toError(err).message}`);
    }
    batcher.system(`starting: ${displayArgv(dispatch.argv)} (${launcher.name} launcher)`);
    let prepared: PreparedRun;
    try {
      const limits = runLimitsFor(dispatch, settings.limits);
      const unenforced = unenforcedRequestsNote(dispatch, launcher.name, launcher.isolation.limits);
      if (unenforced) batcher.system(unenforced);
      // Built from nothing: the tool's env with its secrets resolved, none of the agent's own.
      const env = runEnvironment(dispatch, deps.secrets);
      const datasets = runDatasets(dispatch, settings.datasets);
      prepared = await launcher.prepare({ ...ref, argv: dispatch.argv, image: dispatch.image, env, runDir, searchPath: settings.searchPath, limits, datasets });
    } catch (err) {
      return launchFailed(toError(err).message);
    }
    try {
      return await executePrepared(prepared, runDir);
    } finally {
      await prepared.cleanUp().catch((err: unknown) => deps.log.warn(`${tag}: cleaning up: ${toError(err).message}`));
    }
  }

  async function executePrepared(prepared: PreparedRun, runDir: string): Promise<Outcome> {
    let child: StartedRun;
    let held: HeldLogs | null = null;
    try {
      if (settings.logsPolicy === "system-only") held = await holdLogs(runDir);
      child = await prepared.start();
    } catch (err) {
      await held?.close();
      return launchFailed(toError(err).message);
    }
    if (held) batcher.system("stdout and stderr stay on the node (logs: system-only), listed with the run's outputs");
    started = child;
    const startedAtMs = performance.now();
    // First: the subscribers' RUNNING waits for nothing else this agent does.
    const running = stateEvent(settings.nodeId, ref, "RUNNING");
    void deps.outbox.send(running);
    const tree = deps.sampler.track(child.tree);
    deps.journal.append({ event: "started", ...ref, at: running.at, pid: child.pid, startTicks: readStartTicks(child.pid) }).catch((err: unknown) => {
      deps.log.error(`${tag}: ${toError(err).message}`);
    });
    if (dispatch.timeoutSeconds !== null) armTimeout(Date.now() + dispatch.timeoutSeconds * 1000);
    if (stopReason) terminate();
    const output = readOutput([child.stdout, child.stderr], held ?? batcher, sink);

    const exit = await child.wait();
    tree.exited();
    exited = true;
    const wallMs = Math.round(performance.now() - startedAtMs);
    clearTimeout(timeoutTimer);
    clearTimeout(killTimer);
    const sigkillFromAgent = agentSentKill;
    // Whatever the outcome, nothing the run started may outlive it.
    signalRun("SIGKILL");
    if (!(await output.closed(STREAM_CLOSE_TIMEOUT_MS))) {
      batcher.system(`output still open ${STREAM_CLOSE_TIMEOUT_MS} ms after the process exited (a process left the run's group?): stopped reading`);
    }
    if (held) await held.close();
    else {
      batcher.end("STDOUT");
      batcher.end("STDERR");
    }
    const outcome = classify(exit, sigkillFromAgent);
    for (const note of exit.notes) batcher.system(note);
    batcher.system(describeExit(exit));
    // Independent reads of the finished run's directory, at once rather than one after another.
    const listed = dispatch.outputs.length > 0 || held !== null;
    const [result, launcherUsage, outputBytes, outputs] = await Promise.all([
      readResultFile(runDir, dispatch.resultFile),
      child.usage(),
      measureOutputBytes(runDir),
      listed ? listOutputs(runDir, dispatch.outputs, settings.outputsPolicy, { alsoList: held?.paths }) : undefined,
      // A scan that read the run's processes while they ran must count.
      tree.scanned(),
    ]);
    if (result.kind === "problem") batcher.system(result.message);
    const { cpuUserMs, cpuSystemMs, peakRssBytes: sampledPeakBytes } = tree.finish();
    const peakRssBytes = Math.max(sampledPeakBytes, launcherUsage.peakRssBytes ?? 0);
    for (const note of outputs ? manifestNotes(outputs) : []) batcher.system(note);
    return {
      ...outcome,
      ...(result.kind === "result" ? { result: result.value } : {}),
      ...(outputs ? { outputs } : {}),
      usage: { wallMs, cpuUserMs, cpuSystemMs, peakRssBytes, outputBytes },
    };
  }

  /** The dispatch's input files, placed read-only in the run's directory, or why the run cannot start. */
  async function fetchInputs(runDir: string): Promise<{ ok: true; placed: PlacedInput[] } | { ok: false; reason: string }> {
    const count = dispatch.inputs?.length ?? 0;
    if (count === 0) return { ok: true, placed: [] };
    if (!deps.inputs) return { ok: false, reason: "this agent cannot fetch input files" };
    batcher.system(`fetching ${count} input file(s) from the orchestrator`);
    try {
      return await deps.inputs.fetchInto(dispatch, runDir, { signal: fetching.signal, note: (text) => batcher.system(text) });
    } catch (err) {
      return { ok: false, reason: `cannot place the input files: ${toError(err).message}` };
    }
  }

  function inputRefused(reason: string): Outcome {
    batcher.system(`not started: ${reason}`);
    return { state: "FAILED", failureReason: "REJECTED_BY_NODE", exitCode: null, message: reason, usage: withoutLogBytes(zeroUsage()) };
  }

  /** Node timers overflow past ~24.8 days, so a longer timeout is armed in steps. */
  function armTimeout(deadlineMs: number): void {
    const leftMs = deadlineMs - Date.now();
    timeoutTimer = leftMs > MAX_TIMER_MS ? setTimeout(() => armTimeout(deadlineMs), MAX_TIMER_MS) : setTimeout(onTimeout, Math.max(0, leftMs));
  }

  function onTimeout(): void {
    if (stopReason || exited) return;
    stopReason = { kind: "timeout" };
    batcher.system(`timed out after ${dispatch.timeoutSeconds} s`);
    terminate();
  }

  function classify(exit: RunExit, sigkillFromAgent: boolean): Omit<Outcome, "usage"> {
    const exitCode = exit.code;
    if (stopReason?.kind === "cancel") {
      // A run handed back fails as NODE_LOST, so the orchestrator's retry policy can run it again.
      if (stopReason.handBack) return { state: "FAILED", failureReason: "NODE_LOST", exitCode, message: stopReason.message };
      return { state: "CANCELLED", exitCode, message: stopReason.message };
    }
    if (stopReason?.kind === "timeout") {
      return { state: "FAILED", failureReason: "TIMEOUT", exitCode, message: `timed out after ${dispatch.timeoutSeconds} s` };
    }
    if (exit.limitHit?.kind === "memory") return { state: "FAILED", failureReason: "OUT_OF_MEMORY", exitCode, message: exit.limitHit.message };
    if (exit.limitHit) return { state: "FAILED", failureReason: "EXIT_CODE", exitCode, message: `${exit.limitHit.message}; ${describeExit(exit)}` };
    if (exit.signal === "SIGKILL" && !sigkillFromAgent) {
      return { state: "FAILED", failureReason: "OUT_OF_MEMORY", exitCode, message: "killed by SIGKILL that the agent did not send (likely the OOM killer)" };
    }
    if (exit.signal) return { state: "FAILED", failureReason: "EXIT_CODE", exitCode, message: `killed by signal ${exit.signal}` };
    if (exitCode === 0) return { state: "SUCCEEDED", exitCode };
    return { state: "FAILED", failureReason: "EXIT_CODE", exitCode, message: `exited with code ${exitCode}` };
  }

  function launchFailed(message: string): Outcome {
    batcher.system(message);
    return { state: "FAILED", failureReason: "LAUNCH_ERROR", exitCode: null, message, usage: withoutLogBytes(zeroUsage()) };
  }

  function cancelledBeforeStart(message: string, handBack: boolean): Outcome {
    batcher.system("not started");
    if (handBack) return { state: "FAILED", failureReason: "NODE_LOST", exitCode: null, message, usage: withoutLogBytes(zeroUsage()) };
    return { state: "CANCELLED", exitCode: null, message, usage: withoutLogBytes(zeroUsage()) };
  }

  async function finish(outcome: Outcome): Promise<void> {
    finished = true;
    // Every log line goes to the outbox (once spooled) before the terminal state, which the outbox
    // keeps in order.
    batcher.flush();
    batcher.stop();
    const { state, usage, ...extra } = outcome;
    const terminal = stateEvent(settings.nodeId, ref, state, { ...extra, usage: { ...usage, logBytes: batcher.logBytes() } });
    // The spool's fsync of the last lines and the journal's of the end run at once: both are done
    // before the terminal state is sent.
    const journaled = deps.journal.append({ event: "finished", ...ref, at: terminal.at, terminal }).catch((err: unknown) => {
      deps.log.error(`${tag}: ${toError(err).message}`);
    });
    await Promise.all([sink.handedOver(), journaled]);
    spool.close();
    void reportTerminal(terminal, deps).then(() => deps.onReported?.(terminal));
  }

  const done = execute()
    .catch((err: unknown): Outcome => {
      deps.log.error(`${tag}: agent error: ${toError(err).stack ?? String(err)}`);
      signalRun("SIGKILL");
      const message = `agent error while running: ${toError(err).message}`;
      batcher.system(message);
      return { state: "FAILED", failureReason: started === null ? "LAUNCH_ERROR" : "NODE_LOST", exitCode: null, message, usage: withoutLogBytes(zeroUsage()) };
    })
    .then(finish);

  return {
    ...ref,
    done,
    cancel(reason, handBack = false) {
      if (stopReason || exited || finished) return;
      stopReason = { kind: "cancel", message: reason, handBack };
      batcher.system(`cancelled: ${reason}`);
      fetching.abort();
      terminate();
    },
    abort() {
      agentSentKill = true;
      signalRun("SIGKILL");
    },
  };
}

function withoutLogBytes(usage: UsageReport): Omit<UsageReport, "logBytes"> {
  const { logBytes: _logBytes, ...rest } = usage;
  return rest;
}

function describeExit(exit: Pick<RunExit, "code" | "signal">): string {
  return exit.signal ? `process killed by signal ${exit.signal}` : `process exited with code ${exit.code}`;
}

/** Feeds stdout/stderr to the batcher (or to the held files), pausing both while the spool's fsyncs or the outbox lag behind. */
function readOutput(streams: [Readable, Readable], batcher: Pick<LogBatcher, "write">, sink: LogSink): { closed(timeoutMs: number): Promise<boolean> } {
  const names = ["STDOUT", "STDERR"] as const;
  let paused = false;
  const closed = streams.map(
    (stream, i) =>
      new Promise<void>((resolve) => {
        stream.on("data", (chunk: Buffer) => {
          batcher.write(names[i] ?? "STDOUT", chunk);
          if (paused || !sink.congested()) return;
          paused = true;
          for (const s of streams) s.pause();
          void sink.whenUncongested().then(() => {
            paused = false;
            for (const s of streams) s.resume();
          });
        });
        stream.on("error", () => undefined);
        stream.once("close", resolve);
      }),
  );
  return {
    async closed(timeoutMs) {
      // The run is over: read what is left even if the sink is congested.
      for (const s of streams) s.resume();
      const inTime = await withTimeout(Promise.all(closed), timeoutMs, "output still open").then(
        () => true,
        () => false,
      );
      if (!inTime) for (const s of streams) s.destroy();
      return inTime;
    },
  };
}
