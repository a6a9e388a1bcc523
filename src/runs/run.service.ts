/** Reading runs. Framework-free: throws AppErrors only. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import { checkUuid, hasProjectRole, isAdmin, NotFoundError, operatesNode, ProjectRole, type Viewer } from "../kernel/index.js";
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

/** Every attempt of the given tasks, by node then attempt; one statement for any number of tasks. */
export async function runsByTaskIds(em: EntityManager, ids: readonly string[]): Promise<Run[]> {
  return em.find(Run, { taskId: { $in: [...ids] } }, { orderBy: { nodeId: "asc", attempt: "asc" } });
}

