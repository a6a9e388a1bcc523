/**
 * Dispatches that never reached their node: QUEUED runs their live node leaves out of its
 * heartbeats are dispatched again (same attempt) once the node's runs queue was seen empty and the
 * node went on leaving them out (src/runs/lifecycle/unreported-runs.ts). A non-empty queue may still
 * hold them (the node is busy); messages the agent received but has not started are listed by its
 * heartbeats (`waitingRuns`).
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import { ChangeSet, type AfterCommit } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { findUnheldDispatches, settleUnheldDispatches, type UnreportedRunOptions } from "../runs/index.js";
import { toError } from "../shared/index.js";

export interface LostDispatchDeps {
  /** Ready messages in a node's runs queue, from the broker (passive declare). */
  runsQueueDepth: (nodeId: string) => Promise<number>;
  afterCommit: AfterCommit;
  logger: Logger;
}

/** One pass; resolves with the number of runs dispatched again. */
export async function reconcileLostDispatches(orm: MikroORM, options: UnreportedRunOptions, deps: LostDispatchDeps): Promise<number> {
  const candidates = await findUnheldDispatches(orm.em.fork(), options);
  if (candidates.length === 0) return 0;
  const byQueue = { empty: [] as string[], notEmpty: [] as string[] };
  const nodes = new Set(candidates.map((c) => c.nodeId));
  // Asked outside any transaction: no row is locked while the broker answers.
  for (const nodeId of nodes) {
    let depth: number;
    try {
      depth = await deps.runsQueueDepth(nodeId);
    } catch (err) {
      deps.logger.warn("cannot count the messages in a node's queue; its unheld dispatches wait", { nodeId, error: toError(err).message });
      continue;
    }
    const runIds = candidates.filter((c) => c.nodeId === nodeId).map((c) => c.runId);
    byQueue[depth === 0 ? "empty" : "notEmpty"].push(...runIds);
  }
  const changes = new ChangeSet();
  const runs = await orm.em.fork().transactional(async (em) => {
    await settleUnheldDispatches(em, byQueue.notEmpty, false, options, changes);
    return settleUnheldDispatches(em, byQueue.empty, true, options, changes);
  });
  deps.afterCommit(changes);
  for (const run of runs) deps.logger.warn("a dispatch never reached its node; dispatched again", { runId: run.id, attempt: run.attempt, nodeId: run.nodeId });
  return runs.length;
}
