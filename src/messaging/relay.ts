/**
 * The outbox relay: publishes unsent outbox rows with publisher confirms and marks them sent in the
 * same transaction that locked them (`FOR UPDATE SKIP LOCKED`), so several relays can run at once
 * without publishing a row twice, and a crash between publish and commit re-publishes the same
 * message id at most (the agent ignores a run attempt it already has).
 */
import type { EntityManager, MikroORM } from "@mikro-orm/postgresql";
import { json, query } from "../db/sql.js";
import { createLoop, type Loop } from "../loop.js";
import type { Logger } from "../logger.js";
import { nodeMessageSchema, nodeOfDispatchRoutingKey, parseMessage, type NodeMessage } from "./contracts.js";
import type { DispatchPublisher } from "./dispatch-publisher.js";

export interface RelayOptions {
  pollMs: number;
  batchSize: number;
  /** Signs a node message as it leaves (issue time = publish time, so outbox waits do not age it). */
  sign: (message: NodeMessage) => NodeMessage;
  /** Sees, after each transaction, how long each row it published waited in the outbox (ms). */
  onPublished?: (waitedMs: number[]) => void;
}

export interface Relay {
  /** Asks the relay to look for rows now (after a commit that wrote some). */
  wake(): void;
  /** Publishes what is pending now; resolves with the number of rows sent. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

interface OutboxRow {
  id: string;
  message_id: string;
  exchange: string;
  routing_key: string;
  payload: unknown;
}

export function createRelay(orm: MikroORM, publisher: Pick<DispatchPublisher, "publishAll" | "ensureNodeQueues">, options: RelayOptions, logger: Logger): Relay {
  /** The payload as the agent will parse it (defaults applied), signed; a payload that is no node message goes as it is. */
  function signed(payload: unknown): unknown {
    const parsed = parseMessage(nodeMessageSchema, payload);
    if (!parsed.ok) {
      logger.warn("an outbox payload is not a node message; published unsigned", { problem: parsed.error });
      return payload;
    }
    return options.sign(parsed.value);
  }

  async function runOnce(): Promise<number> {
    let sent = 0;
    let unconfirmed = 0;
    let waitedMs: number[] = [];
    await orm.em.fork().transactional(async (em) => {
      const rows = await query<OutboxRow>(
        em,
        `select id, message_id, exchange, routing_key, payload from outbox
         where sent_at is null order by id limit ? for update skip locked`,
        [options.batchSize],
      );
      if (rows.length === 0) return;
      const nodes = new Set(rows.map((r) => nodeOfDispatchRoutingKey(r.routing_key)).filter((n): n is string => n !== null));
      for (const nodeId of nodes) await publisher.ensureNodeQueues(nodeId);
      // Signed one by one as they are published: the broker confirms the first while later ones are signed.
      const confirmed = await publisher.publishAll(
        (function* () {
          for (const r of rows) yield { exchange: r.exchange, routingKey: r.routing_key, payload: signed(r.payload), messageId: r.message_id };
        })(),
      );
      const ok = rows.filter((_, i) => confirmed[i]).map((r) => r.id);
      const failed = rows.filter((_, i) => !confirmed[i]);
      if (ok.length > 0) {
        const marked = await query<{ waited_ms: number }>(
          em,
          `update outbox set sent_at = now(), attempts = attempts + 1 where id in (select value::bigint from jsonb_array_elements_text(?::jsonb))
           returning (extract(epoch from clock_timestamp() - created_at) * 1000)::float8 as waited_ms`,
          [json(ok)],
        );
        waitedMs = marked.map((m) => Number(m.waited_ms));
      }
      if (failed.length > 0) {
        await query(
          em,
          `update outbox set attempts = attempts + 1, last_error = 'not confirmed by the broker' where id in (select value::bigint from jsonb_array_elements_text(?::jsonb))`,
          [json(failed.map((r) => r.id))],
        );
        unconfirmed = failed.length;
      }
      sent = ok.length;
    });
    if (waitedMs.length > 0) options.onPublished?.(waitedMs);
    // Confirmed rows are committed as sent; the others wait for the next round (with backoff).
    if (unconfirmed > 0) throw new Error(`${unconfirmed} outbox message(s) were not confirmed by the broker`);
    return sent;
  }

  const loop = createLoop({ name: "outbox relay", intervalMs: options.pollMs, logger, pass: async () => (await runOnce()) >= options.batchSize });

  return { wake: loop.wake, runOnce, stop: loop.stop };
}

/** Marks an outbox message unsent again (the broker returned it), so the relay publishes it anew. */
export async function markUnsent(orm: MikroORM, messageId: string): Promise<void> {
  await query(orm.em.fork(), `update outbox set sent_at = null, last_error = 'returned by the broker: no queue' where message_id = ?`, [messageId]);
}

/** Deletes up to `limit` outbox rows published more than `retentionMs` ago. Returns how many. */
export async function pruneSentOutbox(em: EntityManager, retentionMs: number, limit = 5_000): Promise<number> {
  const rows = await query(
    em,
    `delete from outbox where id in (select id from outbox where sent_at is not null and sent_at < now() - (? * interval '1 millisecond') limit ?) returning id`,
    [retentionMs, limit],
  );
  return rows.length;
}

export interface OutboxPrunerOptions {
  intervalMs: number;
  /** How long published rows are kept (for inspection) before they are deleted. */
  retentionMs: number;
}

/** A loop that deletes published outbox rows past their retention, 5,000 at a time. */
export function createOutboxPruner(orm: MikroORM, options: OutboxPrunerOptions, logger: Logger): Loop {
  return createLoop({
    name: "outbox pruning",
    intervalMs: options.intervalMs,
    logger,
    pass: async () => (await pruneSentOutbox(orm.em.fork(), options.retentionMs)) >= 5_000,
  });
}
