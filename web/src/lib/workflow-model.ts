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

/** The workflow after one event; the same object when nothing changed. */
export function applyEvent(workflow: WorkflowView, event: WorkflowEvent, ordered = true): WorkflowView {
  if (event.kind === "WORKFLOW") {
    const state = pick(workflow.state, event.state, ordered);
    return state === workflow.state ? workflow : { ...workflow, state };
  }
  const taskId = event.taskId ?? event.run?.task.id;
  const index = workflow.tasks.findIndex((t) => t.id === taskId);
  if (index < 0) return workflow;
  const task = workflow.tasks[index];
  const next = event.kind === "TASK" ? { ...task, state: pick(task.state, event.state, ordered) } : applyRun(task, event, ordered);
  if (next === task || (event.kind === "TASK" && next.state === task.state)) return workflow;
  const tasks = workflow.tasks.slice();
  tasks[index] = next;
  return { ...workflow, tasks };
}

export interface LiveWorkflow {
  workflow: WorkflowView | null;
  /** Events that came before the snapshot (bounded). */
  early: WorkflowEvent[];
}

export type LiveAction = { type: "snapshot"; workflow: WorkflowView } | { type: "event"; event: WorkflowEvent };

const MAX_EARLY_EVENTS = 10_000;

/** React reducer: keeps events until the snapshot comes, then merges them into it. */
export function liveWorkflowReducer(live: LiveWorkflow, action: LiveAction): LiveWorkflow {
  if (action.type === "snapshot") {
    // The subscription may have started before or after the query read: an early event may be
    // older or newer than the snapshot, so it only moves states forward.
    const workflow = live.early.reduce((w, e) => applyEvent(w, e, false), action.workflow);
    return { workflow, early: [] };
  }
  if (!live.workflow) return live.early.length >= MAX_EARLY_EVENTS ? live : { workflow: null, early: [...live.early, action.event] };
  const workflow = applyEvent(live.workflow, action.event);
  return workflow === live.workflow ? live : { workflow, early: [] };
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
