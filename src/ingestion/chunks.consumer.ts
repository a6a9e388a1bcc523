/**
 * Consumes chunks of released output files from their own queue (they are large and go to disk,
 * not into the transactions of other node events). The chunks delivered together are handled as
 * one batch (one statement finds their artifacts, a file's chunks are staged in one go), two
 * batches at a time. Each is
 * checked like every node event (size before parsing, schema, routing key, the node's own broker
 * user, the run's node) and handed to the artifacts domain. A chunk whose artifact is not known or
 * released yet (its manifest or the node's decision travels on the other queue) waits a little,
 * unacknowledged, then is dead-lettered `not_released`.
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import { receiveChunks, type ArtifactStore, type ChunkOutcome } from "../artifacts/index.js";
import { isTransientDbError } from "../db/sql.js";
import { ChangeSet, UnavailableError, type AfterCommit } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import type { NodeEventDelivery } from "../messaging/broker.js";
import { MAX_CHUNK_EVENT_BYTES, MAX_CHUNK_HEADER_CHARS, parseMessage, routingKeyOfNodeEvent, RUN_CHUNK_HEADER, runChunkHeaderSchema, type RunChunkEvent } from "../messaging/contracts.js";
import { forgedRunClaims, type RunClaim } from "../runs/index.js";
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
/** Most chunks handled together (the subscription's prefetch is 16). */
const MAX_BATCH = 16;
/** Batches handled at once: while one waits for the disk or the database, the next is under way. */
const MAX_BATCHES_IN_FLIGHT = 2;

interface Pending {
  delivery: NodeEventDelivery;
  chunk: RunChunkEvent;
  firstSeenAt: number;
  /** Handled in a batch of its own: its batch failed, and one chunk must not fail the others. */
  alone?: boolean;
}

const isTransient = (err: unknown) => isTransientDbError(err) || err instanceof UnavailableError;

export function createChunkIngestion(deps: ChunkIngestionDeps): ChunkIngestion {
  const waitMs = deps.waitMs ?? 15_000;
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  const counts = { stored: 0, corrupt: 0, deadLettered: 0 };
  /** Chunks validated and not yet handled, in the order they came. */
  const queue: Pending[] = [];
  let pumpScheduled = false;
  let inFlight = 0;
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

  /** Handles a batch: its chunks' outcomes in one go, then each delivery settled by its own. */
  async function handleBatch(batch: readonly Pending[]): Promise<void> {
    const em = deps.orm.em.fork();
    const changes = new ChangeSet();
    const outcomes = await receiveChunks(em, deps.store, batch.map((p) => p.chunk), changes);
    deps.afterCommit(changes);
    // An artifact found is one of the chunk's run on the chunk's node and attempt; only a chunk of
    // none needs the run's own check (the run of another node: forged).
    const claims = new Map<number, RunClaim>();
    outcomes.forEach((outcome, i) => {
      if (outcome.kind === "wait" && !outcome.known) claims.set(i, { runId: batch[i]!.chunk.runId, attempt: batch[i]!.chunk.attempt, nodeId: batch[i]!.chunk.nodeId });
    });
    const forged = claims.size > 0 ? await forgedRunClaims(em, [...claims.values()]) : new Map<RunClaim, string>();
    batch.forEach((pending, i) => {
      const claim = claims.get(i);
      const problem = claim ? forged.get(claim) : undefined;
      if (problem !== undefined) deadLetter(pending.delivery, problem, "forged");
      else settle(pending, outcomes[i]!);
    });
  }

  function settle({ delivery, chunk, firstSeenAt }: Pending, outcome: ChunkOutcome): void {
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
        return later({ delivery, chunk, firstSeenAt });
    }
  }

  function later(pending: Pending): void {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      enqueue(pending);
    }, RETRY_DELAY_MS);
    timers.add(timer);
  }

  function enqueue(pending: Pending): void {
    if (stopped) return;
    queue.push(pending);
    if (pumpScheduled) return;
    // After this turn: the chunks the broker delivered together go in one batch.
    pumpScheduled = true;
    setImmediate(pump);
  }

  function pump(): void {
    pumpScheduled = false;
    while (!stopped && inFlight < MAX_BATCHES_IN_FLIGHT && queue.length > 0) {
      const firstAlone = queue.findIndex((p) => p.alone);
      const batch = queue.splice(0, firstAlone === 0 ? 1 : Math.min(MAX_BATCH, firstAlone === -1 ? queue.length : firstAlone));
      inFlight += 1;
      const task = handleBatch(batch)
        .catch((err: unknown) => {
          // The database is away: hold the chunks (unacknowledged) and try again; anything else goes back to the broker.
          if (isTransient(err)) {
            for (const pending of batch) later({ ...pending, firstSeenAt: Date.now() });
            return;
          }
          if (batch.length > 1) {
            // Each on its own, so that the chunk at fault goes back to the broker alone.
            for (const pending of batch) enqueue({ ...pending, alone: true });
            return;
          }
          deps.logger.warn("a chunk failed; the broker will deliver it again", { messageId: batch[0]!.delivery.messageId, error: toError(err).message });
          batch[0]!.delivery.retry(toError(err));
        })
        .finally(() => {
          inFlight -= 1;
          running.delete(task);
          pump();
        });
      running.add(task);
    }
  }

  return {
    accept(delivery) {
      if (stopped) return;
      const chunk = validate(delivery);
      if (chunk) enqueue({ delivery, chunk, firstSeenAt: Date.now() });
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
