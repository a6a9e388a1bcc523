/**
 * Stores dead letters as they arrive, with a delivery limit of its own (a letter PostgreSQL keeps
 * refusing is dropped with an error log, never redelivered in a loop), and prunes letters past
 * their retention.
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import { isTransientDbError } from "../db/sql.js";
import { UnavailableError } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { createLoop } from "../loop.js";
import type { DeadLetterDelivery } from "../messaging/broker.js";
import { toError } from "../shared/index.js";
import { pruneDeadLetters, storeDeadLetter } from "./dead-letter.service.js";

export interface DeadLetterConsumerOptions {
  /** How long letters are kept before the prune deletes them. */
  retentionMs: number;
  /** Interval of the prune. */
  pruneIntervalMs: number;
  /** Attempts to store one letter before it is dropped. @default 3 */
  storeAttempts?: number;
  /** Pause between two attempts, times the attempt number. @default 200 */
  retryDelayMs?: number;
}

export interface DeadLetterConsumer {
  /** Stores one letter, then acknowledges it (also when it is dropped). */
  handle(letter: DeadLetterDelivery): void;
  /** Letters handled so far, by outcome. */
  stats(): { stored: number; dropped: number };
  stop(): Promise<void>;
}

export function createDeadLetterConsumer(orm: MikroORM, options: DeadLetterConsumerOptions, logger: Logger): DeadLetterConsumer {
  const storeAttempts = options.storeAttempts ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 200;
  const counts = { stored: 0, dropped: 0 };
  const pruner = createLoop({
    name: "dead-letter pruning",
    intervalMs: options.pruneIntervalMs,
    logger,
    pass: async () => (await pruneDeadLetters(orm.em.fork(), options.retentionMs)) >= 5_000,
  });

  async function store(letter: DeadLetterDelivery): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await storeDeadLetter(orm.em.fork(), letter);
        counts.stored += 1;
        logger.warn("a message was dead-lettered; see the deadLetters query", { routingKey: letter.routingKey, messageId: letter.messageId });
        letter.ack();
        return;
      } catch (err) {
        if (isTransientDbError(err) || err instanceof UnavailableError) {
          // PostgreSQL is away: the letter waits on the queue; this is not the letter's fault.
          letter.retry(toError(err));
          return;
        }
        if (attempt >= storeAttempts) {
          counts.dropped += 1;
          logger.error("dropping a dead letter that cannot be stored", { routingKey: letter.routingKey, messageId: letter.messageId, attempts: attempt, error: toError(err).message });
          letter.ack();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs * attempt));
      }
    }
  }

  return {
    handle(letter) {
      void store(letter);
    },
    stats: () => ({ ...counts }),
    stop: () => pruner.stop(),
  };
}
