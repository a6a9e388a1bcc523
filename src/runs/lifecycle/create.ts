/** The first attempt of every run of a submitted workflow, and handing runs to their nodes. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { json, query } from "../../db/sql.js";
import { RunState, type ChangeSet } from "../../kernel/index.js";
import { Run } from "../run.entity.js";
import { enqueueDispatch } from "./node-messages.js";
import { fromStates } from "./table.js";

/** A run to create: what the node will execute, and whether it waits for upstream tasks. */
export interface NewRun {
  id: string;
  taskId: string;
  workflowId: string;
  nodeId: string;
  argv: string[];
  env: Record<string, string>;
  timeoutSeconds: number | null;
  waitsForUpstream: boolean;
}

/** Inserts attempt 1 of each run in bulk: PENDING while it waits for upstream tasks, else QUEUED. */
export async function createRuns(em: EntityManager, newRuns: NewRun[], changes: ChangeSet): Promise<Run[]> {
  const now = new Date();
  const runs = newRuns.map(({ waitsForUpstream, ...fields }) => {
    const run = new Run();
    Object.assign(run, fields, {
      attempt: 1,
      state: waitsForUpstream ? RunState.PENDING : RunState.QUEUED,
      queuedAt: waitsForUpstream ? null : now,
    });
    return run;
  });
  // Bulk insert: no unit-of-work bookkeeping for thousands of new rows.
  if (runs.length > 0) await em.insertMany(Run, runs);
  changes.addRuns(runs.map((r) => ({ ...r })));
  return runs;
}

/**
 * Marks QUEUED runs as handed to their node's queue and writes their dispatch messages to the
 * outbox. Returns how many were dispatched (a run already dispatched or no longer QUEUED is skipped).
 */
export async function dispatchRuns(em: EntityManager, runIds: string[], changes: ChangeSet): Promise<number> {
  if (runIds.length === 0) return 0;
  const marked = await query<{ id: string; queued_at: Date | null; dispatched_at: Date }>(
    em,
    `update run set dispatched_at = now()
     where id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) and dispatched_at is null and state in (${fromStates("dispatch")})
     returning id, queued_at, dispatched_at`,
    [json(runIds)],
  );
  changes.dispatched.push(...marked.map((m) => ({ runId: m.id, queuedAt: m.queued_at, dispatchedAt: m.dispatched_at })));
  await enqueueDispatch(em, marked.map((m) => m.id), changes);
  return marked.length;
}
