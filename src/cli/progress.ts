/** What a workflow's runs add up to: the latest attempt on each of a task's nodes counts. */
import type { RunView, TaskView } from "./operations.js";
import { isTerminal } from "./operations.js";

/** The latest attempt of each (task, node). */
export function latestRuns(tasks: { id: string; runs: RunView[] }[]): Map<string, RunView & { taskId: string }> {
  const latest = new Map<string, RunView & { taskId: string }>();
  for (const task of tasks) {
    for (const run of task.runs) {
      const key = `${task.id}/${run.node.id}`;
      const known = latest.get(key);
      if (!known || run.attempt > known.attempt) latest.set(key, { ...run, taskId: task.id });
    }
  }
  return latest;
}

/** `done/total` over the latest attempts. */
export function progressOf(tasks: { id: string; runs: RunView[] }[]): { done: number; total: number } {
  const latest = [...latestRuns(tasks).values()];
  return { done: latest.filter((r) => isTerminal(r.state)).length, total: latest.length };
}

/** Why a workflow did not succeed, in one line: its first unsuccessful run. */
export function whyNot(tasks: TaskView[]): string {
  for (const task of tasks) {
    for (const run of latestRuns([task]).values()) {
      if (run.state === "SUCCEEDED" || run.state === "SKIPPED") continue;
      const reason = [run.failureReason, run.message].filter(Boolean).join(": ");
      return `task ${task.key} on ${run.node.id} (attempt ${run.attempt}) ${run.state}${reason ? ` (${reason})` : ""}`;
    }
  }
  return "no run failed";
}
