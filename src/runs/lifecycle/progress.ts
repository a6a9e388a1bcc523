/**
 * Derives task state from its runs (latest attempt per node, under the task's success policy) and
 * workflow state from its tasks; releases (for the scheduler) or skips dependent tasks when a task ends. Every step is
 * a fixed number of statements for any number of tasks.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import { json, query } from "../../db/sql.js";
import { isTerminalState, RunState, type ChangeSet } from "../../kernel/index.js";
import { rowToRun } from "../run.mapper.js";
import { checkInputs, refuseForInputs } from "./input-checks.js";
import { fromStates } from "./table.js";

const activeOrder = [RunState.RUNNING, RunState.ACCEPTED, RunState.QUEUED, RunState.PENDING];

/** State of a task whose latest runs are in `states`, when `minSucceeded` of them must succeed. */
export function deriveTaskState(states: RunState[], minSucceeded: number | null): RunState {
  if (states.length === 0) return RunState.SKIPPED;
  const needed = Math.min(minSucceeded ?? states.length, states.length);
  const succeeded = states.filter((s) => s === RunState.SUCCEEDED).length;
  if (succeeded >= needed) return RunState.SUCCEEDED;
  const open = states.filter((s) => !isTerminalState(s));
  if (succeeded + open.length >= needed) {
    if (succeeded > 0 && open.every((s) => s === RunState.PENDING || s === RunState.QUEUED)) return RunState.RUNNING;
    return activeOrder.find((s) => open.includes(s)) ?? RunState.RUNNING;
  }
  const lost = states.filter((s) => s !== RunState.SUCCEEDED && isTerminalState(s));
  if (lost.every((s) => s === RunState.SKIPPED)) return RunState.SKIPPED;
  if (lost.every((s) => s === RunState.CANCELLED || s === RunState.SKIPPED)) return RunState.CANCELLED;
  return RunState.FAILED;
}

/** State of a workflow whose tasks are in `states`. */
export function deriveWorkflowState(states: RunState[]): RunState {
  if (states.length === 0) return RunState.SUCCEEDED;
  if (states.every(isTerminalState)) {
    if (states.every((s) => s === RunState.SUCCEEDED)) return RunState.SUCCEEDED;
    if (states.includes(RunState.FAILED)) return RunState.FAILED;
    if (states.includes(RunState.CANCELLED)) return RunState.CANCELLED;
    return states.includes(RunState.SUCCEEDED) ? RunState.FAILED : RunState.SKIPPED;
  }
  const open = states.filter((s) => !isTerminalState(s));
  if (open.some((s) => s === RunState.RUNNING)) return RunState.RUNNING;
  if (states.some(isTerminalState)) return RunState.RUNNING;
  return activeOrder.find((s) => open.includes(s)) ?? RunState.RUNNING;
}

interface TaskRow {
  id: string;
  workflow_id: string;
  state: RunState;
  min_succeeded: number | null;
  depends_on_ids: string[];
  states: RunState[] | null;
}

/** Recomputes the given tasks, then their dependents and workflows; records changes. */
export async function refreshTasks(em: EntityManager, taskIds: Iterable<string>, changes: ChangeSet): Promise<void> {
  let pending = [...new Set(taskIds)];
  const workflowIds = new Set<string>();
  // Each round settles one layer of the graph; a skip can cascade through many layers.
  while (pending.length > 0) {
    // The tasks and their workflows are locked (in task id order) before their runs' and tasks'
    // states are read, by a later statement: a transaction that ended another run of these tasks,
    // or another task of these workflows, held the locks and has committed by then. Read in the
    // locking statement, its changes would be missed (that statement's snapshot predates them), and
    // two instances ending a task's last two runs at once each left it RUNNING.
    await query(
      em,
      `select t.id from task t join workflow w on w.id = t.workflow_id
       where t.id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
       order by t.id for no key update of t, w`,
      [json(pending)],
    );
    const rows = await query<TaskRow>(
      em,
      `select t.id, t.workflow_id, t.state, t.min_succeeded, t.depends_on_ids,
         (select array_agg(lr.state) from (
            select distinct on (r.node_id) r.state from run r where r.task_id = t.id order by r.node_id, r.attempt desc
          ) lr) as states
       from task t where t.id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`,
      [json(pending)],
    );
    const updates: { id: string; state: RunState }[] = [];
    const ended: TaskRow[] = [];
    for (const row of rows) {
      workflowIds.add(row.workflow_id);
      const next = deriveTaskState(row.states ?? [], row.min_succeeded);
      if (next === row.state) continue;
      updates.push({ id: row.id, state: next });
      changes.tasks.set(row.id, { id: row.id, workflowId: row.workflow_id, state: next });
      if (isTerminalState(next)) ended.push(row);
    }
    await writeStates(em, "task", updates);
    pending = await settleDependents(em, ended, changes);
  }
  await refreshWorkflows(em, workflowIds, changes);
}

/** Sets derived states in one statement; a terminal state stamps `finished_at`, another clears it. */
async function writeStates(em: EntityManager, table: "task" | "workflow", updates: { id: string; state: RunState }[]): Promise<void> {
  if (updates.length === 0) return;
  await query(
    em,
    `update ${table} t set state = x.state,
       finished_at = case when x.state in ('SUCCEEDED','FAILED','CANCELLED','SKIPPED') then coalesce(t.finished_at, now()) else null end
     from jsonb_to_recordset(?::jsonb) as x(id uuid, state text) where t.id = x.id`,
    [json(updates.map(({ id, state }) => ({ id, state })))],
  );
}

/**
 * For tasks that just ended, releases dependents whose dependencies all succeeded (PENDING runs
 * become QUEUED for the scheduler) and skips dependents of a task that did not succeed.
 * Returns the dependents whose state must be recomputed.
 */
async function settleDependents(em: EntityManager, ended: TaskRow[], changes: ChangeSet): Promise<string[]> {
  if (ended.length === 0) return [];
  const dependents = await query<{ id: string; deps: RunState[] }>(
    em,
    `select t.id, (select array_agg(d.state) from task d
                   where d.id in (select value::uuid from jsonb_array_elements_text(t.depends_on_ids))) as deps
     from task t
     where t.workflow_id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
       and t.state = 'PENDING'
       and exists (select 1 from jsonb_array_elements_text(t.depends_on_ids) d
                   where d.value in (select value from jsonb_array_elements_text(?::jsonb)))`,
    [json([...new Set(ended.map((t) => t.workflow_id))]), json(ended.map((t) => t.id))],
  );
  const upstreamDone = dependents.filter((d) => d.deps.every((s) => s === RunState.SUCCEEDED)).map((d) => d.id);
  const skip = dependents.filter((d) => d.deps.some((s) => isTerminalState(s) && s !== RunState.SUCCEEDED)).map((d) => d.id);
  // Manifests of the runs that just ended are stored after this report: an input none matches yet waits.
  const settled = await releaseOrRefuse(em, upstreamDone, false, changes);
  if (skip.length > 0) {
    const skipped = await query(
      em,
      `update run set state = 'SKIPPED', finished_at = now(), message = 'an upstream task did not succeed'
       where state in (${fromStates("skip")}) and task_id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) returning *`,
      [json(skip)],
    );
    changes.addRuns(skipped.map(rowToRun));
  }
  return [...settled, ...skip];
}

/**
 * Releases the dependents (upstream all succeeded) whose declared inputs are all AVAILABLE and
 * fails those with an input that can never arrive; the others keep waiting. Returns the tasks it
 * changed.
 */
export async function releaseOrRefuse(em: EntityManager, taskIds: string[], manifestsRecorded: boolean, changes: ChangeSet): Promise<string[]> {
  const { ready, refused } = await checkInputs(em, taskIds, manifestsRecorded);
  if (ready.length > 0) {
    const released = await query(
      em,
      `update run set state = 'QUEUED', queued_at = now()
       where state in (${fromStates("release")}) and task_id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) returning *`,
      [json(ready)],
    );
    changes.addRuns(released.map(rowToRun));
  }
  await refuseForInputs(em, refused, changes);
  return [...ready, ...refused.map((r) => r.id)];
}

/** Recomputes workflows that `refreshTasks` locked (so their tasks' states are read after any concurrent change committed). */
async function refreshWorkflows(em: EntityManager, workflowIds: Set<string>, changes: ChangeSet): Promise<void> {
  if (workflowIds.size === 0) return;
  const rows = await query<{ id: string; state: RunState; states: RunState[] }>(
    em,
    `select w.id, w.state, (select array_agg(t.state) from task t where t.workflow_id = w.id) as states
     from workflow w where w.id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`,
    [json([...workflowIds])],
  );
  const updates = rows
    .map((row) => ({ id: row.id, previous: row.state, state: deriveWorkflowState(row.states ?? []) }))
    .filter((u) => u.state !== u.previous);
  await writeStates(em, "workflow", updates);
  for (const u of updates) changes.workflows.set(u.id, { id: u.id, state: u.state });
}
