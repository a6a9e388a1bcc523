/**
 * The orchestrator's Prometheus metrics. Counts that live in PostgreSQL (runs by state, the outbox
 * backlog) come from one statement at scrape time, cached for `SNAPSHOT_TTL_MS`; latencies are
 * observed where a batch already knows its times (the after-commit hook, the relay, ingestion),
 * one call per batch. Labels name states and outcomes only: no node, user, run or token ever.
 */
import { Counter, type Histogram, type Registry } from "prom-client";
import type { MikroORM } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import { RunState, type ChangeSet } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { toError } from "../shared/index.js";
import { createMetricKit } from "../shared/prometheus.js";

/** How long one database snapshot answers scrapes. @default 5_000 // 5 seconds */
export const SNAPSHOT_TTL_MS = 5_000;

/** Seconds, from 5 ms to ~20 minutes. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200];
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/** Live figures the metrics read at scrape time; each defaults to "nothing" until wired. */
export interface MetricsSources {
  brokerConnected(): boolean;
  liveSubscribers(): number;
  webSocketConnections(): number;
  ingestion(): { stored: number; deadLettered: number; retried: number; overlapped: number; relocked: number };
  deadLetters(): { stored: number; dropped: number };
}

export interface OrchestratorMetrics {
  registry: Registry;
  /** Filled in by the app as the parts start. */
  sources: MetricsSources;
  /** The after-commit observer: dispatch latency, submit-to-running, stored log lines. */
  observeChanges(changes: ChangeSet): void;
  /** The relay's observer: how long each published row waited in the outbox. */
  observePublished(waitedMs: number[]): void;
  /** Ingestion's observer: batch size and each event's lag. */
  observeIngestBatch(batch: { size: number; lagMs: number[] }): void;
  /** The Prometheus text of every metric. */
  scrape(): Promise<string>;
  contentType: string;
}

interface Snapshot {
  runs: Record<string, number>;
  outboxUnsent: number;
  outboxOldestSeconds: number;
}

interface Pool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

function poolOf(orm: MikroORM): Pool | null {
  const pool = (orm.em.getConnection().getKnex().client as { pool?: Partial<Pool> }).pool;
  return pool && typeof pool.numUsed === "function" ? (pool as Pool) : null;
}

export function createOrchestratorMetrics(orm: MikroORM, options: { poolMax: number }, logger: Logger): OrchestratorMetrics {
  const kit = createMetricKit();
  const sources: MetricsSources = {
    brokerConnected: () => false,
    liveSubscribers: () => 0,
    webSocketConnections: () => 0,
    ingestion: () => ({ stored: 0, deadLettered: 0, retried: 0, overlapped: 0, relocked: 0 }),
    deadLetters: () => ({ stored: 0, dropped: 0 }),
  };

  let cached: { at: number; value: Promise<Snapshot> } | null = null;
  let last: Snapshot = { runs: {}, outboxUnsent: 0, outboxOldestSeconds: 0 };
  function snapshot(): Promise<Snapshot> {
    if (cached && Date.now() - cached.at < SNAPSHOT_TTL_MS) return cached.value;
    const value = query<{ runs: Record<string, number>; outbox_unsent: number; outbox_oldest_s: number }>(
      orm.em.fork(),
      `select (select coalesce(json_object_agg(state, n), '{}'::json) from (select state, count(*)::int as n from run group by state) s) as runs,
         (select count(*)::int from outbox where sent_at is null) as outbox_unsent,
         (select coalesce(extract(epoch from now() - min(created_at)), 0)::float8 from outbox where sent_at is null) as outbox_oldest_s`,
    ).then(
      ([row]) => (last = { runs: row.runs, outboxUnsent: Number(row.outbox_unsent), outboxOldestSeconds: Number(row.outbox_oldest_s) }),
      (err: unknown) => {
        // A scrape while PostgreSQL is away still answers, with the last figures (and /ready says why).
        logger.debug("metrics snapshot failed", { error: toError(err).message });
        cached = null;
        return last;
      },
    );
    cached = { at: Date.now(), value };
    return value;
  }

  kit.gaugeBy("fem_runs", "Runs by state (all attempts), from PostgreSQL at scrape time (cached 5 s)", "state", async () => {
    const { runs } = await snapshot();
    return Object.fromEntries(Object.values(RunState).map((state) => [state, runs[state] ?? 0]));
  });
  kit.gauge("fem_outbox_unsent", "Outbox messages not yet confirmed by RabbitMQ (the relay's backlog)", async () => (await snapshot()).outboxUnsent);
  kit.gauge("fem_outbox_oldest_unsent_seconds", "Age of the oldest unsent outbox message (0 when none)", async () => (await snapshot()).outboxOldestSeconds);
  const dispatchLatency = kit.histogram("fem_run_dispatch_latency_seconds", "From a run becoming QUEUED to the scheduler handing it to its node's queue (waiting for a free slot included)", LATENCY_BUCKETS);
  const submitToRunning = kit.histogram("fem_run_submit_to_running_seconds", "From a run's creation (its workflow's submission, or its retry) to its node reporting it RUNNING", LATENCY_BUCKETS);
  const outboxWait = kit.histogram("fem_outbox_publish_latency_seconds", "From an outbox row's commit to RabbitMQ confirming it", LATENCY_BUCKETS);
  const ingestionLag = kit.histogram("fem_ingestion_lag_seconds", "From a node event's time (a log batch's first line) to its storage in PostgreSQL", LATENCY_BUCKETS);
  const ingestionBatch = kit.histogram("fem_ingestion_batch_size", "Node events stored per ingestion transaction", BATCH_BUCKETS);
  const logLines = new Counter({ name: "fem_log_lines_total", help: "Run log lines stored (rate() gives lines per second)", registers: [kit.registry] });
  kit.totals("fem_ingestion_events_total", "Node events handled by this instance, by outcome", "outcome", () => {
    const stats = sources.ingestion();
    return { stored: stats.stored, dead_lettered: stats.deadLettered, retried: stats.retried };
  });
  kit.totals(
    "fem_ingestion_log_transactions_total",
    "Ingestion transactions of log lines only that ran beside the next one (overlapped), and those stored again with their runs locked because a run reached its cap meanwhile (relocked)",
    "kind",
    () => {
      const stats = sources.ingestion();
      return { overlapped: stats.overlapped, relocked: stats.relocked };
    },
  );
  kit.totals("fem_dead_letters_total", "Dead letters this instance took off the dead-letter queue, by outcome (stored for inspection, or dropped)", "outcome", () => sources.deadLetters());
  kit.gauge("fem_live_subscribers", "Live-event subscribers on this instance (GraphQL subscriptions and internal listeners)", () => sources.liveSubscribers());
  kit.gauge("fem_websocket_connections", "Open GraphQL WebSockets on this instance", () => sources.webSocketConnections());
  kit.gauge("fem_broker_connected", "1 while this instance's RabbitMQ connection is up, else 0", () => (sources.brokerConnected() ? 1 : 0));
  kit.gaugeBy("fem_db_pool_connections", "PostgreSQL pool connections by state (used, free, pending = callers waiting), and max", "state", () => {
    const pool = poolOf(orm);
    return { used: pool?.numUsed() ?? 0, free: pool?.numFree() ?? 0, pending: pool?.numPendingAcquires() ?? 0, max: options.poolMax };
  });

  /** Observes a duration in seconds, skipping what is not a number (prom-client throws on NaN; an observer must not). */
  const observeMs = (histogram: Histogram, ms: number) => {
    if (Number.isFinite(ms)) histogram.observe(Math.max(0, ms / 1_000));
  };
  const between = (from: Date | string, to: Date | string) => new Date(to).getTime() - new Date(from).getTime();
  return {
    registry: kit.registry,
    sources,
    contentType: kit.registry.contentType,
    observeChanges(changes) {
      for (const d of changes.dispatched) if (d.queuedAt) observeMs(dispatchLatency, between(d.queuedAt, d.dispatchedAt));
      for (const run of changes.runs) {
        // A change holds the whole run row; RunSnapshot names only the fields every writer sets.
        const { createdAt, startedAt } = run as { createdAt?: Date | string | null; startedAt?: Date | string | null };
        if (run.state === RunState.RUNNING && createdAt && startedAt) observeMs(submitToRunning, between(createdAt, startedAt));
      }
      let lines = 0;
      for (const log of changes.logs) lines += log.lines.length;
      if (lines > 0) logLines.inc(lines);
    },
    observePublished(waitedMs) {
      for (const ms of waitedMs) observeMs(outboxWait, ms);
    },
    observeIngestBatch({ size, lagMs }) {
      ingestionBatch.observe(size);
      for (const ms of lagMs) observeMs(ingestionLag, ms);
    },
    scrape: () => kit.registry.metrics(),
  };
}
