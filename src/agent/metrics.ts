/**
 * The agent's Prometheus metrics on an optional port (FEM_AGENT_METRICS_PORT, on 127.0.0.1 by
 * default): runs active and waiting, queue wait, journal size, the outbox backlog, reconnects,
 * and the process metrics of prom-client. Labels carry no run, tool or node data.
 */
import { stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Counter } from "prom-client";
import type { RunDispatch } from "../messaging/contracts.js";
import { createMetricKit } from "../shared/prometheus.js";
import { journalPath } from "./journal.js";

/** What the metrics read at scrape time. */
export interface AgentMetricsSources {
  activeRuns(): number;
  waitingRuns(): number;
  journalRecords(): number;
  outboxPending(): number;
  broker(): { connected: boolean; reconnects: number };
}

export interface AgentMetrics {
  /** Filled in once the agent's parts exist. */
  sources: AgentMetricsSources;
  /** A run starts: counts it and observes how long its dispatch waited since the orchestrator sent it. */
  runStarted(dispatch: RunDispatch, startedAtMs?: number): void;
  runFinished(): void;
  scrape(): Promise<string>;
  /** Serves `GET /metrics` on `host:port` (0 picks a port); resolves with the URL. */
  listen(host: string, port: number): Promise<string>;
  stop(): Promise<void>;
}

const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export function createAgentMetrics(sandboxDir: string): AgentMetrics {
  const kit = createMetricKit();
  const registry = kit.registry;
  const sources: AgentMetricsSources = {
    activeRuns: () => 0,
    waitingRuns: () => 0,
    journalRecords: () => 0,
    outboxPending: () => 0,
    broker: () => ({ connected: false, reconnects: 0 }),
  };
  kit.gauge("fem_agent_runs_active", "Runs executing now", () => sources.activeRuns());
  kit.gauge("fem_agent_runs_waiting", "Dispatches delivered and held until a slot frees", () => sources.waitingRuns());
  kit.gauge("fem_agent_journal_records", "Runs the journal remembers", () => sources.journalRecords());
  kit.gauge("fem_agent_outbox_pending", "Events not yet confirmed by RabbitMQ (the agent's outbox backlog)", () => sources.outboxPending());
  kit.gauge("fem_agent_broker_connected", "1 while the RabbitMQ connection is up, else 0", () => (sources.broker().connected ? 1 : 0));
  kit.gauge("fem_agent_journal_bytes", "Size of the journal file", () => stat(journalPath(sandboxDir)).then((s) => s.size, () => 0));
  kit.totals("fem_agent_broker_reconnects_total", "Times the RabbitMQ connection came back after a loss", null, () => sources.broker().reconnects);
  const started = new Counter({ name: "fem_agent_runs_started_total", help: "Runs started", registers: [registry] });
  const finished = new Counter({ name: "fem_agent_runs_finished_total", help: "Runs that ended (any outcome)", registers: [registry] });
  const queueWait = kit.histogram(
    "fem_agent_queue_wait_seconds",
    "From the orchestrator sending a dispatch (its signature time) to the run starting here (queue and slot wait)",
    WAIT_BUCKETS,
  );

  let server: http.Server | null = null;
  return {
    sources,
    runStarted(dispatch, startedAtMs = Date.now()) {
      started.inc();
      const issuedAtMs = dispatch.issuedAt ? Date.parse(dispatch.issuedAt) : NaN;
      if (Number.isFinite(issuedAtMs)) queueWait.observe(Math.max(0, (startedAtMs - issuedAtMs) / 1_000));
    },
    runFinished: () => finished.inc(),
    scrape: () => registry.metrics(),
    async listen(host, port) {
      const listening = http.createServer((req, res) => {
        if (req.method !== "GET" || new URL(req.url ?? "/", "http://localhost").pathname !== "/metrics") {
          res.writeHead(404, { "content-type": "text/plain" }).end("metrics are at /metrics\n");
          return;
        }
        registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
          () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics scrape failed\n"),
        );
      });
      await new Promise<void>((resolve, reject) => {
        listening.once("error", reject);
        listening.listen(port, host, () => resolve());
      });
      server = listening;
      const address = listening.address() as AddressInfo;
      return `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}/metrics`;
    },
    async stop() {
      const closing = server;
      server = null;
      if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
  };
}
