/** Reading runs. Framework-free: throws AppErrors only. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { entityData, json, query } from "../db/sql.js";
import { checkUuid, hasProjectRole, isAdmin, NotFoundError, operatesNode, ProjectRole, TERMINAL, type RunState, type Viewer } from "../kernel/index.js";
import { Run } from "./run.entity.js";

/**
 * Whether the viewer may read a run: a member of its workflow's project, the operator of its
 * node, or ADMIN.
 */
async function canReadRun(em: EntityManager, viewer: Viewer, run: Pick<Run, "nodeId" | "workflowId">): Promise<boolean> {
  if (isAdmin(viewer) || operatesNode(viewer, run.nodeId)) return true;
  const [workflow] = await query<{ project_id: string | null }>(em, `select project_id from workflow where id = ?`, [run.workflowId]);
  return workflow?.project_id ? hasProjectRole(viewer, workflow.project_id, ProjectRole.VIEWER) : false;
}

/** A run the viewer may read; NOT_FOUND otherwise, whether or not it exists. */
export async function getRun(em: EntityManager, id: string, viewer: Viewer): Promise<Run> {
  checkUuid("id", id);
  const run = await em.findOne(Run, { id });
  if (!run || !(await canReadRun(em, viewer, run))) throw NotFoundError.entity("Run", id);
  return run;
}

/**
 * Every attempt of the given tasks, by node then attempt; one statement for any number of tasks,
 * as plain records (a workflow's graph reads thousands).
 */
export async function runsByTaskIds(em: EntityManager, ids: readonly string[]): Promise<Run[]> {
  const rows = await query(em, `select * from run where task_id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) order by node_id, attempt`, [json(ids)]);
  return entityData(em, Run, rows);
}


/** What a node claims about a run: that it holds `attempt` of it. */
export interface RunClaim {
  runId: string;
  attempt: number;
  nodeId: string;
}

/**
 * The claims that are forged, with why: each run row is one attempt on one node, so a claim naming
 * another node or another attempt of an existing run is forged. An unknown run changes nothing and
 * is not judged. One statement.
 */
export async function forgedRunClaims(em: EntityManager, claims: readonly RunClaim[]): Promise<Map<RunClaim, string>> {
  const forged = new Map<RunClaim, string>();
  if (claims.length === 0) return forged;
  const ids = [...new Set(claims.map((c) => c.runId))];
  const rows = await query<{ id: string; attempt: number; node_id: string }>(
    em,
    `select id, attempt, node_id from run where id in (select jsonb_array_elements_text(?::jsonb)::uuid)`,
    [json(ids)],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const claim of claims) {
    const run = byId.get(claim.runId);
    if (run && (run.node_id !== claim.nodeId || run.attempt !== claim.attempt)) {
      forged.set(claim, `run ${claim.runId} attempt ${claim.attempt} is not node ${claim.nodeId}'s`);
    }
  }
  return forged;
}

/** How many runs on the node are not finished yet, by state (PENDING, QUEUED, ACCEPTED, RUNNING); empty when none. */
export async function unfinishedRunsOfNode(em: EntityManager, nodeId: string): Promise<Partial<Record<RunState, number>>> {
  const rows = await query<{ state: RunState; runs: string }>(
    em,
    `select state, count(*) as runs from run where node_id = ? and state not in (select value from jsonb_array_elements_text(?::jsonb)) group by state`,
    [nodeId, json([...TERMINAL])],
  );
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.runs)]));
}
