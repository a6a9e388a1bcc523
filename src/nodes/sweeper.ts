/** The periodic sweep of nodes: silent nodes go OFFLINE; runs of nodes silent past the grace fail NODE_LOST. */
import type { MikroORM } from "@mikro-orm/postgresql";
import { ChangeSet, type AfterCommit } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { createLoop, type Loop } from "../loop.js";
import { loseRunsOfSilentNodes } from "../runs/index.js";
import { sweepSilentNodes } from "./heartbeat.js";

export interface SweeperOptions {
  intervalMs: number;
  /** Silence after which a node is OFFLINE. */
  offlineAfterMs: number;
  /** Silence after which its runs are lost. */
  lostAfterMs: number;
}

export function createNodeSweeper(orm: MikroORM, options: SweeperOptions, afterCommit: AfterCommit, logger: Logger): Loop {
  return createLoop({
    name: "node sweep",
    intervalMs: options.intervalMs,
    logger,
    pass: async () => {
      const changes = new ChangeSet();
      await orm.em.fork().transactional(async (em) => {
        await sweepSilentNodes(em, options.offlineAfterMs, changes);
        await loseRunsOfSilentNodes(em, options.lostAfterMs, changes);
      });
      afterCommit(changes);
      return false;
    },
  });
}
