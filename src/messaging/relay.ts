/**
 * The outbox relay: publishes unsent outbox rows with publisher confirms and marks them sent in the
 * same transaction that locked them (`FOR UPDATE SKIP LOCKED`), so several relays can run at once
 * without publishing a row twice, and a crash between publish and commit re-publishes the same
 * message id at most (the agent ignores a run attempt it already has). Batches overlap: while one
 * batch waits for its confirms and is marked sent, the next is locked (its own transaction skips
 * the rows the first holds), signed and published after it on the same channel, so the order of
 * ids is kept.
 */
import type { EntityManager, MikroORM } from "@mikro-orm/postgresql";
import { json, query } from "../db/sql.js";
import { createLoop, type Loop } from "../loop.js";
import type { Logger } from "../logger.js";
import { nodeOfDispatchRoutingKey } from "./contracts.js";
import type { DispatchPublisher } from "./dispatch-publisher.js";
import type { PayloadSigner } from "./payload-signer.js";

export interface RelayOptions {
  pollMs: number;
  batchSize: number;
  /** Signs each node message as it leaves (issue time = signing time, so outbox waits do not age it). */
  signer: Pick<PayloadSigner, "signAll">;
  /** Batches published and not yet confirmed and marked at once. @default 2 */
  maxBatchesInFlight?: number;
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
  /** JSON text: parsed (and signed) off the relay's thread. */
  payload: string;
}

interface Outcome {
  sent: number;
  unconfirmed: number;
  /** How long each row sent waited in the outbox (ms). */
  waitedMs: number[];
}

export function createRelay(orm: MikroORM, publisher: Pick<DispatchPublisher, "publish" | "ensureNodeQueues">, options: RelayOptions, logger: Logger): Relay {
  const maxInFlight = options.maxBatchesInFlight ?? 2;

  /** One batch's transaction: lock, sign, publish, await confirms, mark. */
  async function relayBatch(em: EntityManager, published: (count: number) => void): Promise<Outcome> {
    const rows = await query<OutboxRow>(
      em,
      `select id, message_id, exchange, routing_key, payload::text as payload from outbox
       where sent_at is null order by id limit ? for update skip locked`,
      [options.batchSize],
    );
    if (rows.length === 0) {
      published(0);
      return { sent: 0, unconfirmed: 0, waitedMs: [] };
    }
    const nodes = new Set(rows.map((r) => nodeOfDispatchRoutingKey(r.routing_key)).filter((n): n is string => n !== null));
    for (const nodeId of nodes) await publisher.ensureNodeQueues(nodeId);
    const signed = await options.signer.signAll(rows.map((r) => r.payload));
    const unsigned = signed.find((s) => s.problem !== null);
    if (unsigned) logger.warn("an outbox payload is not a node message; published unsigned", { problem: unsigned.problem });
    const { confirmed: confirming } = await publisher.publish(
      rows.map((r, i) => ({ exchange: r.exchange, routingKey: r.routing_key, payload: undefined, body: signed[i]!.body, messageId: r.message_id })),
    );
    published(rows.length);
    const confirmed = await confirming;
    const ok = rows.filter((_, i) => confirmed[i]).map((r) => r.id);
    let waitedMs: number[] = [];
    const failed = rows.filter((_, i) => !confirmed[i]);
    if (ok.length > 0) {
      // Through `query` (the ids are a small parameter): the ORM's query log sees it, and so does the latency bench.
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
    }
    return { sent: ok.length, unconfirmed: failed.length, waitedMs };
  }

  /** Starts a batch; resolves once it is published (with its row count) and with its outcome to come. */
  async function startBatch(): Promise<{ count: number; finished: Promise<Outcome> }> {
    let markPublished: (count: number) => void = () => undefined;
    const publishedCount = new Promise<number>((resolve) => {
      markPublished = resolve;
    });
    const finished = orm.em
      .fork()
      .transactional((em) => relayBatch(em, markPublished))
      .then((outcome) => {
        if (outcome.waitedMs.length > 0) options.onPublished?.(outcome.waitedMs);
        return outcome;
      });
    // A batch that fails before it publishes rejects here.
    const count = await Promise.race([publishedCount, finished.then((o) => o.sent + o.unconfirmed)]);
    return { count, finished };
  }

  async function runOnce(): Promise<number> {
    // Each batch's outcome, settled (never rejecting) so that one failing while the next starts is no unhandled rejection.
    const batches: Promise<PromiseSettledResult<Outcome>>[] = [];
    let awaited = 0;
    let failure: unknown = null;
    try {
      for (;;) {
        const batch = await startBatch();
        batches.push(Promise.allSettled([batch.finished]).then(([outcome]) => outcome!));
        if (batch.count < options.batchSize) break;
        if (batches.length - awaited >= maxInFlight && (await batches[awaited++]!).status === "rejected") break;
      }
    } catch (err) {
      failure = err;
    }
    const outcomes = await Promise.all(batches);
    if (failure !== null) throw failure;
    let sent = 0;
    let unconfirmed = 0;
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") throw outcome.reason;
      sent += outcome.value.sent;
      unconfirmed += outcome.value.unconfirmed;
    }
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
