/**
 * The periodic sweep of nodes: silent nodes go OFFLINE; runs of nodes silent past the grace fail
 * NODE_LOST; runs a live node no longer reports are settled (NODE_LOST, or dispatched again).
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import { ChangeSet, type AfterCommit } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { createLoop, type Loop } from "../loop.js";
import { loseRunsOfSilentNodes, loseUnreportedRuns, type UnreportedRunOptions } from "../runs/index.js";
import { sweepSilentNodes } from "./heartbeat.js";
import { reconcileLostDispatches } from "./lost-dispatches.js";

export interface SweeperOptions {
  intervalMs: number;
  /** Silence after which a node is OFFLINE. */
  offlineAfterMs: number;
  /** Silence after which its runs are lost. */
  lostAfterMs: number;
  /** When a run its live node leaves out of its heartbeats is settled. */
  unreported: UnreportedRunOptions;
}

export interface SweeperDeps {
  afterCommit: AfterCommit;
  logger: Logger;
  /** Ready messages in a node's runs queue, from the broker. */
  runsQueueDepth: (nodeId: string) => Promise<number>;
}

export function createNodeSweeper(orm: MikroORM, options: SweeperOptions, deps: SweeperDeps): Loop {
  return createLoop({
    name: "node sweep",
    intervalMs: options.intervalMs,
    logger: deps.logger,
    pass: async () => {
      const changes = new ChangeSet();
      await orm.em.fork().transactional(async (em) => {
        await sweepSilentNodes(em, options.offlineAfterMs, changes);
        await loseRunsOfSilentNodes(em, options.lostAfterMs, changes);
        await loseUnreportedRuns(em, options.unreported, changes);
      });
      deps.afterCommit(changes);
      await reconcileLostDispatches(orm, options.unreported, deps);
      return false;
    },
  });
}
