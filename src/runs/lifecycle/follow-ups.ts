/** What follows any change of runs: retries by policy, then task and workflow state. */
import type { EntityManager } from "@mikro-orm/postgresql";
import type { ChangeSet, RunSnapshot } from "../../kernel/index.js";
import { refreshTasks } from "./progress.js";
import { scheduleRetries } from "./retries.js";

/** Schedules retries of failed runs, then recomputes their tasks (and `alsoTaskIds`), dependents and workflows. */
export async function settleRuns(em: EntityManager, changed: RunSnapshot[], changes: ChangeSet, alsoTaskIds: Iterable<string> = []): Promise<void> {
  await scheduleRetries(em, changed, changes);
  await refreshTasks(em, new Set([...alsoTaskIds, ...changed.map((r) => r.taskId)]), changes);
}
