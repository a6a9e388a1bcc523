/**
 * A workflow as the page shows it, kept current by `workflowEvents`: a snapshot from a query, the
 * events that came before it merged in by state order (runs only move forward), later events
 * applied in the order they arrive.
 */
import { stateRank, type RunState } from "./states";

export interface RunView {
  id: string;
  taskId: string;
  nodeId: string;
  attempt: number;
  state: RunState;
}

export interface TaskView {
  id: string;
  key: string;
  state: RunState;
  dependsOn: string[];
  runs: RunView[];
}

export interface WorkflowView {
  id: string;
  name: string | null;
  state: RunState;
  submittedAt: string;
  submittedBy: string | null;
  /** The project the workflow belongs to (null: from before projects). */
  projectId?: string | null;
  tasks: TaskView[];
}

export interface WorkflowEvent {
  kind: "RUN" | "TASK" | "WORKFLOW";
  state: RunState;
  taskId?: string | null;
  runId?: string | null;
  run?: { id: string; attempt: number; node: { id: string }; task: { id: string } } | null;
}

/** A newer state replaces an older one; `ordered` (a live event) always replaces, a merge only moves forward. */
function pick(current: RunState, next: RunState, ordered: boolean): RunState {
  return ordered || stateRank(next) >= stateRank(current) ? next : current;
}

function applyRun(task: TaskView, event: WorkflowEvent, ordered: boolean): TaskView {
  const runId = event.runId ?? event.run?.id;
  if (!runId) return task;
  const index = task.runs.findIndex((r) => r.id === runId);
  if (index >= 0) {
    const run = task.runs[index];
    const state = pick(run.state, event.state, ordered);
    if (state === run.state) return task;
    const runs = task.runs.slice();
    runs[index] = { ...run, state };
    return { ...task, runs };
  }
  // A run we have not seen: a retry's new attempt. Without its node we cannot place it.
  if (!event.run) return task;
  const run: RunView = { id: runId, taskId: task.id, nodeId: event.run.node.id, attempt: event.run.attempt, state: event.state };
  return { ...task, runs: [...task.runs, run] };
}

function applyToTask(task: TaskView, event: WorkflowEvent, ordered: boolean): TaskView {
  if (event.kind === "RUN") return applyRun(task, event, ordered);
  const state = pick(task.state, event.state, ordered);
  return state === task.state ? task : { ...task, state };
}

/**
 * The workflow after a batch of events, in order; the same object when nothing changed. A batch
 * costs one copy of the task list however many events it holds (a cancel of 1,000 tasks is 2,001
 * events at once).
 */
export function applyEvents(workflow: WorkflowView, events: readonly WorkflowEvent[], ordered = true): WorkflowView {
  let state = workflow.state;
  let tasks: TaskView[] | null = null;
  let index: Map<string, number> | null = null;
  for (const event of events) {
    if (event.kind === "WORKFLOW") {
      state = pick(state, event.state, ordered);
      continue;
    }
    index ??= new Map(workflow.tasks.map((t, i) => [t.id, i]));
    const at = index.get(event.taskId ?? event.run?.task.id ?? "");
    if (at === undefined) continue;
    const current = (tasks ?? workflow.tasks)[at];
    const next = applyToTask(current, event, ordered);
    if (next === current) continue;
    tasks ??= workflow.tasks.slice();
    tasks[at] = next;
  }
  if (state === workflow.state && !tasks) return workflow;
  return { ...workflow, state, tasks: tasks ?? workflow.tasks };
}

/** The workflow after one event; the same object when nothing changed. */
export function applyEvent(workflow: WorkflowView, event: WorkflowEvent, ordered = true): WorkflowView {
  return applyEvents(workflow, [event], ordered);
}

export interface LiveWorkflow {
  workflow: WorkflowView | null;
  /** Waiting for a snapshot: at first, and after the subscription was cut and restarted. */
  awaiting: boolean;
  /** Events since the wait began (bounded), to merge into the snapshot. */
  early: WorkflowEvent[];
}

export type LiveAction = { type: "snapshot"; workflow: WorkflowView } | { type: "events"; events: readonly WorkflowEvent[] } | { type: "resync" };

export const INITIAL_LIVE_WORKFLOW: LiveWorkflow = { workflow: null, awaiting: true, early: [] };

const MAX_EARLY_EVENTS = 10_000;

/** React reducer: shows events as they come, and merges those since a wait began into the snapshot that ends it. */
export function liveWorkflowReducer(live: LiveWorkflow, action: LiveAction): LiveWorkflow {
  switch (action.type) {
    case "snapshot": {
      // The subscription may have started before or after the query read: an early event may be
      // older or newer than the snapshot, so it only moves states forward.
      const workflow = applyEvents(action.workflow, live.early, false);
      return { workflow, awaiting: false, early: [] };
    }
    case "resync":
      return { ...live, awaiting: true, early: [] };
    case "events": {
      const workflow = live.workflow && applyEvents(live.workflow, action.events);
      const early = live.awaiting && live.early.length < MAX_EARLY_EVENTS ? [...live.early, ...action.events] : live.early;
      return workflow === live.workflow && early === live.early ? live : { ...live, workflow, early };
    }
  }
}

/** The latest attempt of each node's run of a task. */
export function latestRuns(task: TaskView): RunView[] {
  const byNode = new Map<string, RunView>();
  for (const run of task.runs) {
    const held = byNode.get(run.nodeId);
    if (!held || run.attempt > held.attempt) byNode.set(run.nodeId, run);
  }
  return [...byNode.values()];
}

/** k of n: a task's nodes whose latest run succeeded, of its nodes. */
export function taskProgress(task: TaskView): { succeeded: number; total: number } {
  const runs = latestRuns(task);
  return { succeeded: runs.filter((r) => r.state === "SUCCEEDED").length, total: runs.length };
}

/** Runs done (in a final state) of all runs, latest attempts only. */
export function workflowProgress(workflow: WorkflowView): { done: number; total: number } {
  const runs = workflow.tasks.flatMap(latestRuns);
  return { done: runs.filter((r) => stateRank(r.state) === stateRank("SUCCEEDED")).length, total: runs.length };
}
