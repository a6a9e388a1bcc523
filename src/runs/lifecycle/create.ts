/** The first attempt of every run of a submitted workflow, and handing runs to their nodes. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { json, queryBound } from "../../db/sql.js";
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

/**
 * Inserts attempt 1 of each run in one statement: PENDING while it waits for upstream tasks, else
 * QUEUED. No entity is made per run (MikroORM's property setters cost more than the insert for
 * thousands of runs): the live snapshots are plain objects with a Run's defaults.
 */
export async function createRuns(em: EntityManager, newRuns: NewRun[], changes: ChangeSet): Promise<void> {
  if (newRuns.length === 0) return;
  const now = new Date();
  const defaults = { ...new Run() };
  const rows: Record<string, unknown>[] = [];
  const snapshots = newRuns.map(({ waitsForUpstream, ...fields }) => {
    const state = waitsForUpstream ? RunState.PENDING : RunState.QUEUED;
    const queuedAt = waitsForUpstream ? null : now;
    rows.push({ id: fields.id, task_id: fields.taskId, workflow_id: fields.workflowId, node_id: fields.nodeId, state, argv: fields.argv, env: fields.env, timeout_seconds: fields.timeoutSeconds, queued: !waitsForUpstream });
    return { ...defaults, ...fields, attempt: 1, state, queuedAt, createdAt: now };
  });
  await queryBound(
    em,
    `insert into run (id, task_id, workflow_id, node_id, attempt, state, argv, env, timeout_seconds, created_at, queued_at)
     select x.id, x.task_id, x.workflow_id, x.node_id, 1, x.state, x.argv, x.env, x.timeout_seconds, ?::timestamptz, case when x.queued then ?::timestamptz end
     from jsonb_to_recordset(?::jsonb) as x(id uuid, task_id uuid, workflow_id uuid, node_id text, state text, argv jsonb, env jsonb, timeout_seconds int, queued boolean)`,
    [now.toISOString(), now.toISOString(), json(rows)],
  );
  changes.addRuns(snapshots);
  changes.runsCreated += rows.length;
}

/**
 * Marks QUEUED runs as handed to their node's queue and writes their dispatch messages to the
 * outbox. Returns how many were dispatched (a run already dispatched or no longer QUEUED is skipped).
 */
export async function dispatchRuns(em: EntityManager, runIds: string[], changes: ChangeSet): Promise<number> {
  if (runIds.length === 0) return 0;
  const marked = await queryBound<{ id: string; queued_at: Date | null; dispatched_at: Date }>(
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
