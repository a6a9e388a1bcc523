/** Reading runs. Framework-free: throws AppErrors only. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { checkUuid, NotFoundError } from "../kernel/index.js";
import { Run } from "./run.entity.js";

export async function getRun(em: EntityManager, id: string): Promise<Run> {
  checkUuid("id", id);
  const run = await em.findOne(Run, { id });
  if (!run) throw NotFoundError.entity("Run", id);
  return run;
}

/** Every attempt of the given tasks, by node then attempt; one statement for any number of tasks. */
export async function runsByTaskIds(em: EntityManager, ids: readonly string[]): Promise<Run[]> {
  return em.find(Run, { taskId: { $in: [...ids] } }, { orderBy: { nodeId: "asc", attempt: "asc" } });
}
