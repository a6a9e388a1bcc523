/**
 * Consumes chunks of released output files from their own queue, one at a time per delivery (they
 * are large and go to disk, not into the batched transactions of other node events). Each is
 * checked like every node event (size before parsing, schema, routing key, the node's own broker
 * user, the run's node) and handed to the artifacts domain. A chunk whose artifact is not known or
 * released yet (its manifest or the node's decision travels on the other queue) waits a little,
 * unacknowledged, then is dead-lettered `not_released`.
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import { receiveChunk, type ArtifactStore } from "../artifacts/index.js";
import { isTransientDbError } from "../db/sql.js";
import { ChangeSet, UnavailableError, type AfterCommit } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import type { NodeEventDelivery } from "../messaging/broker.js";
import { MAX_CHUNK_EVENT_BYTES, MAX_CHUNK_HEADER_CHARS, parseMessage, routingKeyOfNodeEvent, RUN_CHUNK_HEADER, runChunkHeaderSchema, type RunChunkEvent } from "../messaging/contracts.js";
import { forgedRunClaims } from "../runs/index.js";
import { toError } from "../shared/index.js";

export interface ChunkIngestionDeps {
  orm: MikroORM;
  store: ArtifactStore;
  afterCommit: AfterCommit;
  logger: Logger;
  /** The broker user a node publishes as. */
  brokerUserOf(nodeId: string): string;
  /** How long a chunk of an artifact not known or not released here waits before it is dead-lettered. @default 15_000 // 15 seconds */
  waitMs?: number;
}

export interface ChunkIngestion {
  accept(delivery: NodeEventDelivery): void;
  /** Stops handling; chunks not settled stay unacknowledged, so the broker delivers them again. */
  stop(timeoutMs: number): Promise<void>;
  stats(): { stored: number; corrupt: number; deadLettered: number };
}

const RETRY_DELAY_MS = 500;

const isTransient = (err: unknown) => isTransientDbError(err) || err instanceof UnavailableError;

export function createChunkIngestion(deps: ChunkIngestionDeps): ChunkIngestion {
  const waitMs = deps.waitMs ?? 15_000;
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  const counts = { stored: 0, corrupt: 0, deadLettered: 0 };
  let stopped = false;

  function deadLetter(delivery: NodeEventDelivery, problem: string, reason?: string): void {
    counts.deadLettered += 1;
    deps.logger.warn("dead-lettering a chunk", { messageId: delivery.messageId, routingKey: delivery.routingKey, problem, reason });
    delivery.deadLetter(new Error(problem), reason);
  }

  function validate(delivery: NodeEventDelivery): RunChunkEvent | null {
    const sizeBytes = delivery.body.length;
    if (sizeBytes > MAX_CHUNK_EVENT_BYTES) {
      deadLetter(delivery, `chunk of ${sizeBytes} bytes is over the ${MAX_CHUNK_EVENT_BYTES}-byte limit`, "too_large");
      return null;
    }
    // The bytes are the body; the chunk's other fields are JSON in one header, checked like any event.
    const header = delivery.headers[RUN_CHUNK_HEADER];
    const text = Buffer.isBuffer(header) ? header.toString("utf8") : header;
    if (typeof text !== "string" || text.length > MAX_CHUNK_HEADER_CHARS) {
      deadLetter(delivery, `no ${RUN_CHUNK_HEADER} header of at most ${MAX_CHUNK_HEADER_CHARS} characters`);
      return null;
    }
    let content: unknown;
    try {
      content = JSON.parse(text);
    } catch (err) {
      deadLetter(delivery, `${RUN_CHUNK_HEADER} header not JSON: ${toError(err).message}`);
      return null;
    }
    const parsed = parseMessage(runChunkHeaderSchema, content);
    if (!parsed.ok) {
      deadLetter(delivery, parsed.error);
      return null;
    }
    const expected = routingKeyOfNodeEvent(parsed.value);
    if (delivery.routingKey !== expected) {
      deadLetter(delivery, `routing key ${delivery.routingKey} does not match ${expected}`, "forged");
      return null;
    }
    const user = deps.brokerUserOf(parsed.value.nodeId);
    if (delivery.userId !== user) {
      deadLetter(delivery, `published by broker user ${JSON.stringify(delivery.userId ?? null)}, not by node ${parsed.value.nodeId}'s own ${user}`, "forged");
      return null;
    }
    return { ...parsed.value, data: delivery.body };
  }

  async function handle(delivery: NodeEventDelivery, chunk: RunChunkEvent, firstSeenAt: number): Promise<void> {
    const em = deps.orm.em.fork();
    const changes = new ChangeSet();
    // An artifact found is one of the chunk's run on the chunk's node and attempt; only a chunk of
    // none needs the run's own check (the run of another node: forged).
    const outcome = await receiveChunk(em, deps.store, chunk, changes);
    deps.afterCommit(changes);
    if (outcome.kind === "wait" && !outcome.known) {
      const forged = await forgedRunClaims(em, [{ runId: chunk.runId, attempt: chunk.attempt, nodeId: chunk.nodeId }]);
      const problem = [...forged.values()][0];
      if (problem !== undefined) return deadLetter(delivery, problem, "forged");
    }
    switch (outcome.kind) {
      case "stored":
        counts.stored += 1;
        if (outcome.complete) deps.logger.info("artifact stored and checked", { runId: chunk.runId, path: chunk.path, sha256: chunk.fileSha256 });
        return delivery.ack();
      case "ignored":
        return delivery.ack();
      case "corrupt":
        counts.corrupt += 1;
        deps.logger.warn("a corrupt chunk was dropped and asked for again", { runId: chunk.runId, nodeId: chunk.nodeId, problem: outcome.problem });
        return delivery.ack();
      case "refused":
        return deadLetter(delivery, outcome.problem, "not_released");
      case "wait":
        if (Date.now() - firstSeenAt > waitMs) return deadLetter(delivery, `${outcome.why} after ${waitMs} ms`, "not_released");
        return later(delivery, chunk, firstSeenAt);
    }
  }

  function later(delivery: NodeEventDelivery, chunk: RunChunkEvent, firstSeenAt: number): void {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      run(delivery, chunk, firstSeenAt);
    }, RETRY_DELAY_MS);
    timers.add(timer);
  }

  function run(delivery: NodeEventDelivery, chunk: RunChunkEvent, firstSeenAt: number): void {
    if (stopped) return;
    const task = handle(delivery, chunk, firstSeenAt)
      .catch((err: unknown) => {
        // The database is away: hold the chunk (unacknowledged) and try again; anything else goes back to the broker.
        if (isTransient(err)) return later(delivery, chunk, Date.now());
        deps.logger.warn("a chunk failed; the broker will deliver it again", { messageId: delivery.messageId, error: toError(err).message });
        delivery.retry(toError(err));
      })
      .finally(() => running.delete(task));
    running.add(task);
  }

  return {
    accept(delivery) {
      if (stopped) return;
      const chunk = validate(delivery);
      if (chunk) run(delivery, chunk, Date.now());
    },
    async stop(timeoutMs) {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.race([Promise.all(running), new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
    },
    stats: () => ({ ...counts }),
  };
}
