/**
 * The one table of allowed run transitions. Every write of a run's state, attempt or node goes
 * through an operation of this table; its SQL only matches rows in the operation's `from` states.
 */
import { RunState } from "../../kernel/index.js";

export type RunOperation =
  | "create"
  | "release"
  | "skip"
  | "refuseInputs"
  | "dispatch"
  | "redispatch"
  | "accept"
  | "start"
  | "finish"
  | "cancel"
  | "lose"
  | "adopt"
  | "retry"
  | "rerun";

export interface Transition {
  /** States a run may be in for the operation to apply (empty: the operation creates runs). */
  from: readonly RunState[];
  /** States the operation leaves the run in (for retry and rerun: the new attempt's state). */
  to: readonly RunState[];
  description: string;
}

const { PENDING, QUEUED, ACCEPTED, RUNNING, SUCCEEDED, FAILED, CANCELLED, SKIPPED } = RunState;

export const TRANSITIONS: Readonly<Record<RunOperation, Transition>> = {
  create: { from: [], to: [PENDING, QUEUED], description: "a submitted task's first attempt: QUEUED, or PENDING while upstream tasks run" },
  release: { from: [PENDING], to: [QUEUED], description: "every upstream task succeeded" },
  skip: { from: [PENDING], to: [SKIPPED], description: "an upstream task did not succeed" },
  refuseInputs: {
    from: [PENDING],
    to: [FAILED],
    description: "a file it takes from an upstream task was rejected, expired or failed, or none matched (REJECTED_BY_NODE)",
  },
  dispatch: { from: [QUEUED], to: [QUEUED], description: "the scheduler hands the run to its node's queue (sets dispatched_at)" },
  redispatch: {
    from: [QUEUED],
    to: [QUEUED],
    description: "its live node's heartbeats and its empty queue show the dispatch never arrived: the same attempt is published again",
  },
  accept: { from: [QUEUED], to: [ACCEPTED], description: "the node journaled the run" },
  start: { from: [QUEUED, ACCEPTED], to: [RUNNING], description: "the node started the process" },
  finish: { from: [QUEUED, ACCEPTED, RUNNING], to: [SUCCEEDED, FAILED, CANCELLED], description: "the node reports how the run ended" },
  cancel: { from: [PENDING, QUEUED, ACCEPTED, RUNNING], to: [CANCELLED], description: "a user cancelled it" },
  lose: { from: [QUEUED, ACCEPTED, RUNNING], to: [FAILED], description: "the node went silent past the grace, no longer reports the run, or was disabled (NODE_LOST)" },
  adopt: { from: [FAILED], to: [RUNNING], description: "a run failed as NODE_LOST is reported alive by its node again" },
  retry: { from: [FAILED], to: [QUEUED], description: "the task's retry policy covers the failure: a new attempt" },
  rerun: { from: [SUCCEEDED, FAILED, CANCELLED, SKIPPED], to: [QUEUED, PENDING], description: "retryTask: a new attempt of a finished run" },
};

/** Whether `operation` may act on a run in `state`. */
export function isAllowed(operation: RunOperation, state: RunState): boolean {
  return TRANSITIONS[operation].from.includes(state);
}

/**
 * The operation's `from` states as an inline SQL list (`'QUEUED', 'ACCEPTED'`). Constants, not a
 * parameter: under a concurrent update PostgreSQL re-checks a plain condition on the newest row
 * version (EvalPlanQual), which a semi-join on a set-returning function did not survive.
 */
export function fromStates(operation: RunOperation): string {
  return TRANSITIONS[operation].from.map((s) => `'${s}'`).join(", ");
}
