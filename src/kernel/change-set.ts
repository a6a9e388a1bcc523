/** What a transaction changed, collected while it runs and announced as live events after commit. */
import { RunState, type FailureReason } from "./run-state.js";

/** The fields of a run every change carries; a change holds the whole row (dates as Date). */
export interface RunSnapshot {
  id: string;
  taskId: string;
  workflowId: string;
  nodeId: string;
  attempt: number;
  state: RunState;
  failureReason: FailureReason | null;
}

export interface TaskChange {
  id: string;
  workflowId: string;
  state: RunState;
}

export interface WorkflowChange {
  id: string;
  state: RunState;
  /** Set only by the submission: announces a new workflow to the callers who may read its project. */
  submitted?: { projectId: string | null };
}

export interface LogChange {
  runId: string;
  taskId: string;
  workflowId: string;
  lines: { seq: number; stream: string; at: string; text: string }[];
}

/** A node as it travels in live events (dates as ISO strings once serialised). */
export type NodeSnapshot = Record<string, unknown> & { id: string };

/** States a run reaches only from a slot it already holds (dispatched, not ended). */
const HOLDS_ITS_SLOT: ReadonlySet<RunState> = new Set([RunState.ACCEPTED, RunState.RUNNING]);

export class ChangeSet {
  readonly nodes = new Map<string, NodeSnapshot>();
  /** Every transition, in order (a run may change twice in one batch: ACCEPTED, then RUNNING). */
  readonly runs: RunSnapshot[] = [];
  readonly tasks = new Map<string, TaskChange>();
  readonly workflows = new Map<string, WorkflowChange>();
  readonly logs: LogChange[] = [];
  /** Runs whose output files changed release state (listed, decided, transferring, stored, failed, expired). */
  readonly outputs = new Set<string>();
  /** Runs handed to their node's queue (QUEUED stays QUEUED, so they are not among `runs`); for the dispatch-latency metric. */
  readonly dispatched: { runId: string; queuedAt: Date | null; dispatchedAt: Date }[] = [];
  /** Runs a submission inserted (first attempts), for keeping the tables' statistics current. */
  runsCreated = 0;
  /** Set when new outbox rows were written, so the relay should wake up. */
  outboxWritten = false;
  /** Set when runs became ready or slots freed, so the scheduler should look again. */
  schedule = false;

  addRuns(runs: RunSnapshot[]): void {
    this.runs.push(...runs);
    // A run the node took or started holds the slot it was given: nothing new to place. Each
    // needless pass costs five statements, twice per run on the latency path.
    if (runs.some((r) => !HOLDS_ITS_SLOT.has(r.state))) this.schedule = true;
  }

  /** Notes that some output files of these runs changed release state. */
  outputsChanged(runIds: Iterable<string>): void {
    for (const id of runIds) this.outputs.add(id);
  }

  get isEmpty(): boolean {
    return this.nodes.size === 0 && this.runs.length === 0 && this.tasks.size === 0 && this.workflows.size === 0 && this.logs.length === 0 && this.outputs.size === 0;
  }
}

/**
 * Called once after every transaction that changed something commits, whoever wrote it (GraphQL,
 * ingestion, the sweeper, the scheduler): announces the changes live and wakes the relay and the
 * scheduler when they have work. Created once per instance.
 */
export type AfterCommit = (changes: ChangeSet) => void;
