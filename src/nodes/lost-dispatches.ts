/**
 * Dispatches that never reached their node: a QUEUED run its live node has left out of its
 * heartbeats past the grace is published again (same attempt) when the node's runs queue holds no
 * ready message. A non-empty queue may still hold it (the node is busy), so it waits; messages the
 * node received but has not started are listed by its heartbeats (`waitingRuns`).
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import { ChangeSet, type AfterCommit } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { findUnheldDispatches, redispatchRuns, type UnreportedRunOptions } from "../runs/index.js";
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
  const emptyNodes = new Set<string>();
  // Asked outside any transaction: no row is locked while the broker answers.
  for (const nodeId of new Set(candidates.map((c) => c.nodeId))) {
    try {
      if ((await deps.runsQueueDepth(nodeId)) === 0) emptyNodes.add(nodeId);
    } catch (err) {
      deps.logger.warn("cannot count the messages in a node's queue; its lost dispatches wait", { nodeId, error: toError(err).message });
    }
  }
  const runIds = candidates.filter((c) => emptyNodes.has(c.nodeId)).map((c) => c.runId);
  if (runIds.length === 0) return 0;
  const changes = new ChangeSet();
  const runs = await orm.em.fork().transactional((em) => redispatchRuns(em, runIds, options, changes));
  deps.afterCommit(changes);
  for (const run of runs) deps.logger.warn("a dispatch never reached its node; dispatched again", { runId: run.id, attempt: run.attempt, nodeId: run.nodeId });
  return runs.length;
}
