/** Run, task and workflow states, failure reasons and log streams, shared by entities and GraphQL. */
import { registerEnumType } from "type-graphql";
import type { FailureReasonName, LogStreamName, RunStateName } from "../messaging/contracts.js";

export enum RunState {
  PENDING = "PENDING",
  QUEUED = "QUEUED",
  ACCEPTED = "ACCEPTED",
  RUNNING = "RUNNING",
  SUCCEEDED = "SUCCEEDED",
  FAILED = "FAILED",
  CANCELLED = "CANCELLED",
  SKIPPED = "SKIPPED",
}

export enum FailureReason {
  EXIT_CODE = "EXIT_CODE",
  TIMEOUT = "TIMEOUT",
  LAUNCH_ERROR = "LAUNCH_ERROR",
  NODE_LOST = "NODE_LOST",
  OUT_OF_MEMORY = "OUT_OF_MEMORY",
  REJECTED_BY_NODE = "REJECTED_BY_NODE",
}

export enum LogStream {
  STDOUT = "STDOUT",
  STDERR = "STDERR",
  SYSTEM = "SYSTEM",
}

// Compile-time proof that these enums and the wire contract name the same values.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const sameStates: Same<`${RunState}`, RunStateName> = true;
const sameReasons: Same<`${FailureReason}`, FailureReasonName> = true;
const sameStreams: Same<`${LogStream}`, LogStreamName> = true;
void [sameStates, sameReasons, sameStreams];

export const TERMINAL: ReadonlySet<RunState> = new Set([RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.SKIPPED]);

export function isTerminalState(state: RunState): boolean {
  return TERMINAL.has(state);
}

registerEnumType(RunState, { name: "RunState", description: "State of a run; tasks and workflows derive theirs from their runs." });
registerEnumType(FailureReason, { name: "FailureReason", description: "Why a run failed." });
registerEnumType(LogStream, { name: "LogStream" });
