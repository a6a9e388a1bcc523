/** Builders of the `run.state` events the agent sends. */
import { WIRE_VERSION, type FailureReasonName, type OutputManifest, type RunStateEvent, type UsageReport } from "../messaging/contracts.js";

export interface RunRef {
  runId: string;
  attempt: number;
}

/** Longest `message` the contract accepts. */
const MAX_MESSAGE_CHARS = 4_000;

export function stateEvent(
  nodeId: string,
  run: RunRef,
  state: RunStateEvent["state"],
  extra: {
    exitCode?: number | null;
    failureReason?: FailureReasonName | null;
    message?: string | null;
    usage?: UsageReport | null;
    result?: unknown;
    outputs?: OutputManifest;
  } = {},
): RunStateEvent {
  const event: RunStateEvent = { type: "run.state", v: WIRE_VERSION, nodeId, runId: run.runId, attempt: run.attempt, state, at: new Date().toISOString() };
  if (extra.exitCode !== undefined) event.exitCode = extra.exitCode;
  if (extra.failureReason !== undefined) event.failureReason = extra.failureReason;
  if (extra.message !== undefined) event.message = extra.message === null ? null : truncate(extra.message);
  if (extra.usage !== undefined) event.usage = extra.usage;
  if (extra.result !== undefined) event.result = extra.result;
  if (extra.outputs !== undefined) event.outputs = extra.outputs;
  return event;
}

/** A usage report with every figure zero (a run that never started). */
export function zeroUsage(logBytes = 0): UsageReport {
  return { wallMs: 0, cpuUserMs: 0, cpuSystemMs: 0, peakRssBytes: 0, logBytes, outputBytes: 0 };
}

function truncate(text: string): string {
  return text.length <= MAX_MESSAGE_CHARS ? text : `${text.slice(0, MAX_MESSAGE_CHARS - 1)}…`;
}

/** An argv for display only (SYSTEM log lines): words that need it are JSON-quoted. */
export function displayArgv(argv: readonly string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(" ");
}
