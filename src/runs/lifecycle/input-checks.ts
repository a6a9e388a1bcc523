/**
 * Whether a dependent task's declared inputs (`Task.inputs`, artifacts of its upstream tasks) let
 * its runs be released: all AVAILABLE, still on their way, or one that can never arrive.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import picomatch from "picomatch";
import { json, query } from "../../db/sql.js";
import type { ChangeSet } from "../../kernel/index.js";
import { rowToRun } from "../run.mapper.js";
import { fromStates } from "./table.js";

/** Artifact states from which a file never reaches the orchestrator's store (again). */
const LOST_STATES = ["REJECTED", "EXPIRED", "FAILED"];

interface InputRow {
  task_id: string;
  inputs: { from: string; files: string }[];
  from_key: string;
  node_id: string;
  path: string | null;
  state: string | null;
  reason: string | null;
}

export interface InputsVerdict {
  /** Tasks whose every input matched artifacts, all AVAILABLE. */
  ready: string[];
  /** Tasks with an input that can never be delivered, and why (names the file). */
  refused: { id: string; message: string }[];
}

/**
 * Sorts dependent tasks (PENDING, upstream all succeeded) by their inputs; those not in the verdict
 * wait. With `manifestsRecorded` false (the upstream's terminal report is being applied and its
 * manifest not stored yet) an input no artifact matches waits; with true it is refused.
 */
export async function checkInputs(em: EntityManager, taskIds: readonly string[], manifestsRecorded: boolean): Promise<InputsVerdict> {
  if (taskIds.length === 0) return { ready: [], refused: [] };
  const rows = await query<InputRow>(
    em,
    `select t.id as task_id, t.inputs, ut.key as from_key, ur.node_id, a.path, a.state, a.reason
     from task t
     join task ut on ut.workflow_id = t.workflow_id and ut.key in (select i->>'from' from jsonb_array_elements(t.inputs) i)
     join run ur on ur.task_id = ut.id and ur.state = 'SUCCEEDED'
       and ur.attempt = (select max(x.attempt) from run x where x.task_id = ur.task_id and x.node_id = ur.node_id)
     left join artifact a on a.run_id = ur.id
     where t.id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`,
    [json(taskIds)],
  );
  const byTask = new Map<string, InputRow[]>();
  for (const row of rows) byTask.set(row.task_id, [...(byTask.get(row.task_id) ?? []), row]);
  const verdict: InputsVerdict = { ready: [], refused: [] };
  for (const id of taskIds) {
    const taskRows = byTask.get(id);
    if (!taskRows) {
      verdict.ready.push(id);
      continue;
    }
    const outcome = judgeTask(taskRows, manifestsRecorded);
    if (outcome === "ready") verdict.ready.push(id);
    else if (outcome !== "wait") verdict.refused.push({ id, message: outcome.message });
  }
  return verdict;
}

function judgeTask(rows: InputRow[], manifestsRecorded: boolean): "ready" | "wait" | { message: string } {
  let waiting = false;
  for (const input of rows[0]!.inputs) {
    const isMatch = picomatch(input.files, { dot: true });
    const matches = rows.filter((r) => r.from_key === input.from && r.path !== null && isMatch(r.path));
    const lost = matches.find((m) => LOST_STATES.includes(m.state!));
    if (lost) {
      const why = lost.reason ? `: ${lost.reason}` : "";
      return { message: `input ${input.from}/${lost.node_id}/${lost.path} is ${lost.state}${why}; the run cannot start without it` };
    }
    if (matches.length === 0) {
      if (manifestsRecorded) return { message: `input ${JSON.stringify(input.files)} of task ${JSON.stringify(input.from)} matches none of its runs' output files` };
      waiting = true;
    } else if (matches.some((m) => m.state !== "AVAILABLE")) waiting = true;
  }
  return waiting ? "wait" : "ready";
}

/** Fails the PENDING runs of tasks whose inputs can never be delivered, REJECTED_BY_NODE with the verdict's message. */
export async function refuseForInputs(em: EntityManager, refused: InputsVerdict["refused"], changes: ChangeSet): Promise<void> {
  if (refused.length === 0) return;
  const failed = await query(
    em,
    `update run r set state = 'FAILED', failure_reason = 'REJECTED_BY_NODE', message = x.message, finished_at = now()
     from jsonb_to_recordset(?::jsonb) as x(id uuid, message text)
     where r.state in (${fromStates("refuseInputs")}) and r.task_id = x.id returning r.*`,
    [json(refused)],
  );
  changes.addRuns(failed.map(rowToRun));
}
