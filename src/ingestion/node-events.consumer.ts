/**
 * Consumes node events in batches: one transaction stores every log line, state report and
 * heartbeat of a batch, then the batch is acknowledged and announced live. Malformed messages are
 * dead-lettered at once; a batch that fails is retried message by message, so one poison message
 * cannot hold back the others (the broker dead-letters it after its delivery limit).
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import {
  isTerminal,
  nodeEventSchema,
  parseMessage,
  routingKeyOfNodeEvent,
  type HeartbeatEvent,
  type NodeEvent,
  type RunLogsEvent,
  type RunFetchEvent,
  type RunOutputLostEvent,
  type RunOutputsEvent,
  type RunStateEvent,
} from "../messaging/contracts.js";
import type { NodeEventDelivery } from "../messaging/broker.js";
import { ChangeSet, UnavailableError, type AfterCommit } from "../kernel/index.js";
import { toError } from "../shared/index.js";
import { dbErrorSummary, isRetryableDbError, isTransientDbError, retryOnDeadlock } from "../db/sql.js";
import type { Logger } from "../logger.js";
import { applyNodeDecisions, failLostOutputs, recordManifests, type ArtifactStore } from "../artifacts/index.js";
import { LogCapContention, storeLogBatches } from "../logs/index.js";
import { recordHeartbeats } from "../nodes/index.js";
import { adoptReportedRuns, applyReportedStates, bareTerminalReport, countUnreportedRuns, forgedRunClaims, settleInputWaiters, type RunClaim } from "../runs/index.js";

export interface IngestionDeps {
  orm: MikroORM;
  /** Called after each committed batch: announces it and wakes the relay and the scheduler. */
  afterCommit: AfterCommit;
  logger: Logger;
  maxResultBytes: number;
  /** Largest event body accepted; larger ones are dead-lettered `too_large` unparsed. */
  maxEventBytes: number;
  /** Log text stored per run; past it the log is truncated (see `storeLogBatches`). */
  maxLogBytesPerRun: number;
  /** Most messages handled in one transaction. */
  maxBatch: number;
  /**
   * Log lines per transaction, past which a batch takes no further message (it always takes one):
   * bounded transactions, and live announcements that a follower's buffer holds. @default 10_000
   */
  maxBatchLines?: number;
  /** Bytes of message bodies per transaction, past which a batch takes no further message. @default 4 MiB */
  maxBatchBytes?: number;
  /** The broker user a node publishes as; an event whose AMQP `user_id` differs is dead-lettered `forged`. */
  brokerUserOf(nodeId: string): string;
  /** Sees each committed batch: its size and each event's lag from its `at` (a log batch's first line) to storage, in ms. */
  onBatch?: (batch: { size: number; lagMs: number[] }) => void;
  /** Sees the committed batch's `run.fetch` requests (checked as their node's own runs): the input server answers them. */
  onFetches?: (fetches: RunFetchEvent[]) => void;
  /** Where staged chunks of a file its node reports lost are dropped. */
  store?: ArtifactStore;
}

export interface Ingestion {
  /** Hands one delivery to the batcher. */
  accept(delivery: NodeEventDelivery): void;
  /** Resolves when everything accepted so far has been handled (bounded by `timeoutMs`). */
  drain(timeoutMs: number): Promise<void>;
  /** Finishes what is buffered within `timeoutMs`, then stops; unhandled messages stay unacked for redelivery. */
  stop(timeoutMs: number): Promise<void>;
  /**
   * Messages handled so far, by outcome; and transactions of log lines only stored beside the next
   * one (`overlapped`) or stored again locked after a run reached its cap meanwhile (`relocked`).
   */
  stats(): { stored: number; deadLettered: number; retried: number; overlapped: number; relocked: number };
}

interface Parsed {
  delivery: NodeEventDelivery;
  event: NodeEvent;
}

/** When the node says an event happened: a log batch's first line, else the event's `at`. */
function eventTime(event: NodeEvent): string {
  return event.type === "run.logs" ? (event.lines[0]?.at ?? "") : event.at;
}

const isTransient = (err: unknown) => isTransientDbError(err) || err instanceof UnavailableError;

/** The first messages of `buffer` that one transaction handles: at least one, at most `maxBatch`, log lines up to `maxLines` and bodies up to `maxBytes`. */
export function takeBatch<T extends { event: NodeEvent; delivery: { body: Buffer } }>(buffer: readonly T[], limits: { maxBatch: number; maxLines: number; maxBytes: number }): T[] {
  let count = 0;
  let lines = 0;
  let bytes = 0;
  while (count < buffer.length && count < limits.maxBatch) {
    const { event, delivery } = buffer[count]!;
    const moreLines = event.type === "run.logs" ? event.lines.length : 0;
    if (count > 0 && (lines + moreLines > limits.maxLines || bytes + delivery.body.length > limits.maxBytes)) break;
    lines += moreLines;
    bytes += delivery.body.length;
    count += 1;
  }
  return buffer.slice(0, count);
}

export function createIngestion(deps: IngestionDeps): Ingestion {
  const limits = { maxBatch: deps.maxBatch, maxLines: deps.maxBatchLines ?? 10_000, maxBytes: deps.maxBatchBytes ?? 4 * 1024 * 1024 };
  let buffer: Parsed[] = [];
  let stopped = false;
  let running: Promise<void> | null = null;
  const counts = { stored: 0, deadLettered: 0, retried: 0, overlapped: 0, relocked: 0 };

  function deadLetter(delivery: NodeEventDelivery, problem: string, reason?: string): null {
    counts.deadLettered += 1;
    deps.logger.warn("dead-lettering an invalid node event", { messageId: delivery.messageId, routingKey: delivery.routingKey, problem, reason });
    delivery.deadLetter(new Error(problem), reason);
    return null;
  }

  function validate(delivery: NodeEventDelivery): Parsed | null {
    // A broker declared before chunks had their own queue still copies them here (binding "#").
    if (delivery.routingKey.endsWith(".run.chunk.bytes")) {
      delivery.ack();
      return null;
    }
    const sizeBytes = delivery.body.length;
    if (sizeBytes > deps.maxEventBytes) {
      return deadLetter(delivery, `event of ${sizeBytes} bytes is over the ${deps.maxEventBytes}-byte limit (FEM_MAX_EVENT_BYTES)`, "too_large");
    }
    let content: unknown;
    try {
      content = JSON.parse(delivery.body.toString("utf8"));
    } catch (err) {
      return deadLetter(delivery, `not JSON: ${toError(err).message}`);
    }
    const parsed = parseMessage(nodeEventSchema, content);
    if (!parsed.ok) return deadLetter(delivery, parsed.error);
    const expected = routingKeyOfNodeEvent(parsed.value);
    if (delivery.routingKey !== expected) return deadLetter(delivery, `routing key ${delivery.routingKey} does not match ${expected}`, "forged");
    const user = deps.brokerUserOf(parsed.value.nodeId);
    if (delivery.userId !== user) {
      return deadLetter(delivery, `published by broker user ${JSON.stringify(delivery.userId ?? null)}, not by node ${parsed.value.nodeId}'s own ${user}`, "forged");
    }
    return { delivery, event: parsed.value };
  }

  /** The runs each event says its node holds. */
  function claimsOf(event: NodeEvent): RunClaim[] {
    if (event.type === "node.heartbeat") {
      const held = [...event.activeRuns, ...(event.waitingRuns ?? []), ...(event.unreportedRuns ?? [])];
      return held.map((r) => ({ runId: r.runId, attempt: r.attempt, nodeId: event.nodeId }));
    }
    return [{ runId: event.runId, attempt: event.attempt, nodeId: event.nodeId }];
  }

  /** Stores a batch in one transaction; `earlier` is the transaction of a batch taken before it, still in flight. */
  async function handle(batch: Parsed[], earlier: Promise<void> | null = null): Promise<void> {
    let changes = new ChangeSet();
    const forged = new Map<Parsed, string>();
    const fetches: RunFetchEvent[] = [];
    // Lines are stored without locking their runs unless one is near its cap; when another
    // transaction brought it there meanwhile, the batch rolls back and is stored again locked.
    let lockRuns = false;
    // Two instances ingesting at once can deadlock on the same runs: the victim runs again here
    // rather than going back to the broker, where every return counts against the delivery limit.
    await retryOnDeadlock(async () => {
      try {
        await store(lockRuns);
      } catch (err) {
        if (!(err instanceof LogCapContention) || lockRuns) throw err;
        deps.logger.debug("a run reached its log cap while its lines were stored unlocked; storing them again locked", { error: err.message });
        lockRuns = true;
        counts.relocked += 1;
        await store(true);
      }
    });
    for (const item of batch) {
      const problem = forged.get(item);
      if (problem === undefined) item.delivery.ack();
      else deadLetter(item.delivery, problem, "forged");
    }
    counts.stored += batch.length - forged.size;
    if (deps.onBatch) {
      const now = Date.now();
      const lagMs = batch.filter((item) => !forged.has(item)).map((item) => now - Date.parse(eventTime(item.event)));
      deps.onBatch({ size: batch.length, lagMs: lagMs.filter((ms) => Number.isFinite(ms)) });
    }
    deps.afterCommit(changes);
    if (fetches.length > 0) deps.onFetches?.(fetches);

    function store(locked: boolean): Promise<void> {
      return deps.orm.em.fork().transactional(async (em) => {
        changes = new ChangeSet();
        forged.clear();
        fetches.length = 0;
        const claims = new Map(batch.map((item) => [item, claimsOf(item.event)]));
        const forgedClaims = await forgedRunClaims(em, [...claims.values()].flat());
        for (const [item, itemClaims] of claims) {
          const problem = itemClaims.map((c) => forgedClaims.get(c)).find((p) => p !== undefined);
          if (problem !== undefined) forged.set(item, problem);
        }
        const states: RunStateEvent[] = [];
        const logs: RunLogsEvent[] = [];
        const heartbeats: HeartbeatEvent[] = [];
        const decisions: RunOutputsEvent[] = [];
        const lost: RunOutputLostEvent[] = [];
        for (const item of batch) {
          if (forged.has(item)) continue;
          const { event } = item;
          if (event.type === "run.state") states.push(event);
          else if (event.type === "run.logs") logs.push(event);
          else if (event.type === "run.outputs") decisions.push(event);
          else if (event.type === "run.fetch") fetches.push(event);
          else if (event.type === "run.output-lost") lost.push(event);
          else heartbeats.push(event);
        }
        // Lines first: a run's last lines are stored no later than its terminal state.
        await storeLogBatches(em, logs, changes, {
          maxLogBytesPerRun: deps.maxLogBytesPerRun,
          lockRuns: locked,
          // The other batch in flight holds at most this many bytes of text.
          unlockedMarginBytes: limits.maxBytes,
          beforeLocking: earlier ? () => earlier : undefined,
        });
        await applyReportedStates(em, states, changes, {
          maxResultBytes: deps.maxResultBytes,
          onIgnored: (event, current) =>
            deps.logger.debug("stale or duplicate run state ignored", { runId: event.runId, attempt: event.attempt, reported: event.state, current }),
        });
        // After the states: a manifest is stored once its run has ended.
        await recordManifests(em, states, changes);
        // Once stored, the manifests may release (or refuse) dependents that take these runs' files.
        await settleInputWaiters(em, states.filter((s) => s.state === "SUCCEEDED").map((s) => s.runId), changes);
        await recordHeartbeats(em, heartbeats, changes, deps.logger);
        const active = heartbeats.flatMap((hb) => hb.activeRuns.map((r) => ({ runId: r.runId, attempt: r.attempt, nodeId: hb.nodeId })));
        await adoptReportedRuns(em, active, changes);
        // After the states above: a run this batch ended is no longer counted as left out.
        await countUnreportedRuns(em, heartbeats);
        // Last but the dependents it settles: it appends to the audit log, whose lock is held until the commit.
        await applyNodeDecisions(em, decisions, changes);
        const failedRuns = deps.store ? await failLostOutputs(em, deps.store, lost) : [];
        changes.outputsChanged(failedRuns);
        // A file rejected on the node, or lost before it was sent, fails the dependents that take it.
        await settleInputWaiters(em, [...decisions.map((d) => d.runId), ...failedRuns], changes);
      });
    }
  }

  function retry(item: Parsed, err: unknown): void {
    counts.retried += 1;
    deps.logger.warn("node event failed; the broker will redeliver it", { messageId: item.delivery.messageId, error: toError(err).message });
    item.delivery.retry(toError(err));
  }

  /**
   * After `err` refused one event alone: a terminal report is stored in its bare form (FAILED,
   * without the node's data, saying why) so the run still ends; anything else throws `err` again.
   */
  async function handleBare(item: Parsed, err: unknown): Promise<void> {
    const { event } = item;
    // A deadlock says nothing about the report: it goes back to the broker instead.
    if (isTransient(err) || isRetryableDbError(err) || event.type !== "run.state" || !isTerminal(event.state)) throw err;
    deps.logger.warn("a terminal report was refused by the database; storing it bare", { runId: event.runId, attempt: event.attempt, error: toError(err).message });
    await handle([{ delivery: item.delivery, event: bareTerminalReport(event, dbErrorSummary(err)) }]);
  }

  let outageMs = 0;
  /** A batch of log lines only, stored beside the loop of `flush` (null when none is). */
  let side: Promise<void> | null = null;

  /**
   * Stores the batches of the buffer one after another, with one exception: a batch of log lines
   * only may be stored while the next one is (two transactions, so that PostgreSQL inserts one
   * batch while this process prepares and announces the other). A batch with anything else (a
   * run's state above all) waits for it first, so a run's lines are stored before its end.
   */
  async function flush(): Promise<void> {
    while (buffer.length > 0 && !stopped) {
      const next = takeBatch(buffer, limits);
      const linesOnly = next.every((item) => item.event.type === "run.logs");
      if (side && !linesOnly) {
        // Taken again afterwards: a side batch the database refused went back to the front.
        await side;
        continue;
      }
      buffer = buffer.slice(next.length);
      if (linesOnly && side === null && buffer.length > 0) {
        counts.overlapped += 1;
        side = settle(next).finally(() => (side = null));
        continue;
      }
      await settle(next, side);
    }
    if (side) await side;
  }

  /** Handles one batch (after `earlier`'s locks, near a cap); when the database is away, puts it back at the front of the buffer. */
  async function settle(batch: Parsed[], earlier: Promise<void> | null = null): Promise<void> {
    try {
      await handle(batch, earlier);
      outageMs = 0;
    } catch (err) {
      if (isTransient(err)) {
        // PostgreSQL is away: keep the batch (unacked, so nothing is redelivered or counted
        // against the delivery limit) and try again; the prefetch stops further deliveries.
        buffer = [...batch, ...buffer];
        outageMs = Math.min(5_000, outageMs * 2 || 250);
        if (outageMs >= 1_000) deps.logger.warn("the database is unavailable; node events wait", { waitMs: outageMs, pending: buffer.length });
        await new Promise((resolve) => setTimeout(resolve, outageMs));
        return;
      }
      if (batch.length === 1) {
        try {
          await handleBare(batch[0], err);
        } catch (bareErr) {
          if (isTransient(bareErr)) buffer = [...batch, ...buffer];
          else retry(batch[0], err);
        }
        return;
      }
      for (const [i, item] of batch.entries()) {
        try {
          await handle([item]);
        } catch (firstErr) {
          try {
            await handleBare(item, firstErr);
            continue;
          } catch (itemErr) {
            if (isTransient(itemErr)) {
              // The database went away mid-way: the rest waits with the outage handling above.
              buffer = [...batch.slice(i), ...buffer];
              break;
            }
            retry(item, itemErr);
          }
        }
      }
    }
  }

  async function drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((running || buffer.length > 0) && Date.now() < deadline) {
      await Promise.race([running, new Promise((r) => setTimeout(r, 50))]);
    }
  }

  function schedule(): void {
    if (running) return;
    running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(flush)
      .finally(() => {
        running = null;
        if (buffer.length > 0) schedule();
      });
  }

  return {
    accept(delivery) {
      if (stopped) return;
      const parsed = validate(delivery);
      if (!parsed) return;
      buffer.push(parsed);
      schedule();
    },

    drain,

    async stop(timeoutMs) {
      await drain(timeoutMs);
      stopped = true;
      buffer = [];
      await Promise.race([running, new Promise((r) => setTimeout(r, 1_000))]);
    },

    stats: () => ({ ...counts }),
  };
}
