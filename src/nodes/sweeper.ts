/**
 * The periodic sweep: silent nodes go OFFLINE; runs of nodes silent past the grace fail NODE_LOST;
 * published outbox rows past their retention are deleted.
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import type { Logger } from "../logger.js";
import { createLoop, type Loop } from "../loop.js";
import { ChangeSet } from "../runs/change-set.js";
import { scheduleRetries } from "../runs/retries.js";
import { refreshTasks } from "../workflows/progress.js";
import { sweepSilentNodes } from "./heartbeat.js";
import { failRunsOfLostNodes } from "./lost-runs.js";
import { pruneSentOutbox } from "../messaging/relay.js";

export interface SweeperOptions {
  intervalMs: number;
  /** Silence after which a node is OFFLINE. */
  offlineAfterMs: number;
  /** Silence after which its runs are lost. */
  lostAfterMs: number;
  /** How long published outbox rows are kept (for inspection) before they are deleted. */
  outboxRetentionMs: number;
}

export function createNodeSweeper(orm: MikroORM, options: SweeperOptions, onChanges: (changes: ChangeSet) => void, logger: Logger): Loop {
  return createLoop({
    name: "node sweep",
    intervalMs: options.intervalMs,
    logger,
    pass: async () => {
      const changes = new ChangeSet();
      await orm.em.fork().transactional(async (em) => {
        await sweepSilentNodes(em, options.offlineAfterMs, changes);
        const lost = await failRunsOfLostNodes(em, options.lostAfterMs, changes);
        await scheduleRetries(em, lost, changes);
        await refreshTasks(em, lost.map((r) => r.taskId), changes);
        await pruneSentOutbox(em, options.outboxRetentionMs);
      });
      onChanges(changes);
      return false;
    },
  });
}
