import { createServer } from "node:net";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { finishedWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { parsePrometheusText, scrape, type Exposition } from "../support/prometheus.js";
import { waitUntil } from "../support/wait.js";

const test = suite("metrics: the orchestrator's /metrics and the agent's metrics port");
let env: TestEnv;
let agentMetricsUrl: string;

// Prints a few lines, waits for a file to appear (so the test sees the run active), then succeeds.
const WAITER = `
for (let i = 1; i <= 5; i++) console.log('line ' + i);
const fs = require('fs');
const gate = process.argv[1];
const poll = () => (fs.existsSync(gate) ? process.exit(0) : setTimeout(poll, 20));
poll();`;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Scrapes `url` until `ready` holds for the answer. */
function scrapeUntil(url: string, ready: (m: Exposition) => boolean, timeoutMs: number, what: string, intervalMs = 50): Promise<Exposition> {
  return waitUntil(
    async () => {
      const m = await scrape(url);
      return ready(m) ? m : undefined;
    },
    timeoutMs,
    what,
    intervalMs,
  );
}

const metricsUrl = () => env.orchestrator.url.replace(/\/graphql$/, "/metrics");
const count = (m: Exposition, name: string) => m.value(`${name}_count`) ?? 0;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a"]);
  const port = await freePort();
  agentMetricsUrl = `http://127.0.0.1:${port}/metrics`;
  await env.startAgent("site-a", { env: { FEM_AGENT_METRICS_PORT: String(port) } });
});

test.after(async () => {
  await env?.dispose();
});

test("serves valid Prometheus text with every documented family and the process metrics", async () => {
  const m = await scrape(metricsUrl());
  for (const family of [
    "fem_runs",
    "fem_outbox_unsent",
    "fem_outbox_oldest_unsent_seconds",
    "fem_run_dispatch_latency_seconds",
    "fem_run_submit_to_running_seconds",
    "fem_outbox_publish_latency_seconds",
    "fem_ingestion_lag_seconds",
    "fem_ingestion_batch_size",
    "fem_ingestion_events_total",
    "fem_ingestion_log_transactions_total",
    "fem_log_lines_total",
    "fem_dead_letters_total",
    "fem_live_subscribers",
    "fem_websocket_connections",
    "fem_broker_connected",
    "fem_db_pool_connections",
    "process_cpu_seconds_total",
    "nodejs_heap_size_used_bytes",
  ]) {
    assert.ok(m.types.has(family), `${family} is missing`);
  }
  assert.is(m.value("fem_broker_connected"), 1);
  assert.is(m.value("fem_db_pool_connections", { state: "max" }), 10);
  assert.is(m.value("fem_runs", { state: "RUNNING" }), 0);
});

test("the strict reader refuses what is not Prometheus text", () => {
  assert.throws(() => parsePrometheusText("fem_x 1\n"), /before its TYPE/);
  assert.throws(() => parsePrometheusText("# TYPE fem_x gauge\nfem_x one\n"), /bad value/);
  assert.throws(() => parsePrometheusText('# TYPE fem_x gauge\nfem_x{a=b} 1\n'), /bad label/);
});

test("counters and histograms move when a workflow runs, and the agent's scrape shows its run active", async () => {
  const before = await scrape(metricsUrl());
  const agentBefore = await scrape(agentMetricsUrl);
  assert.is(agentBefore.value("fem_agent_runs_active"), 0);
  assert.is(agentBefore.value("fem_agent_broker_connected"), 1);

  const gate = `${env.sandboxRoot}/gate`;
  const tool = await registerNodeScriptTool(env.orchestrator.url, "waiter", WAITER);
  const submitted = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "wait", tool, nodes: ["site-a"], params: { value: gate } }] } });
  const workflowId: string = submitted.submitWorkflow.id;

  const during = await scrapeUntil(
    agentMetricsUrl,
    (m) => m.value("fem_agent_runs_active") === 1 && m.value("fem_agent_runs_started_total") === 1,
    20_000,
    "the agent's metrics to show one run started and active",
  );
  assert.ok(count(during, "fem_agent_queue_wait_seconds") === 1, "the queue wait was observed");

  const { writeFile } = await import("node:fs/promises");
  await writeFile(gate, "");
  const workflow = await finishedWorkflow(env.orchestrator.url, workflowId, 30_000);
  assert.is(workflow.state, "SUCCEEDED");

  // The runs-by-state gauge is a snapshot cached for 5 s.
  const after = await scrapeUntil(
    metricsUrl(),
    (m) => (m.value("fem_runs", { state: "SUCCEEDED" }) ?? 0) >= 1,
    15_000,
    "fem_runs{state=SUCCEEDED} to count the run",
    500,
  );
  assert.ok(count(after, "fem_run_dispatch_latency_seconds") > count(before, "fem_run_dispatch_latency_seconds"), "dispatch latency observed");
  assert.ok(count(after, "fem_run_submit_to_running_seconds") > count(before, "fem_run_submit_to_running_seconds"), "submit-to-running observed");
  assert.ok(count(after, "fem_outbox_publish_latency_seconds") > count(before, "fem_outbox_publish_latency_seconds"), "outbox publish observed");
  assert.ok(count(after, "fem_ingestion_lag_seconds") > count(before, "fem_ingestion_lag_seconds"), "ingestion lag observed");
  assert.ok(count(after, "fem_ingestion_batch_size") > count(before, "fem_ingestion_batch_size"), "ingestion batches observed");
  assert.ok((after.value("fem_log_lines_total") ?? 0) >= (before.value("fem_log_lines_total") ?? 0) + 5, "the five log lines were counted");
  assert.ok((after.value("fem_ingestion_events_total", { outcome: "stored" }) ?? 0) > (before.value("fem_ingestion_events_total", { outcome: "stored" }) ?? 0));
  assert.is(after.value("fem_outbox_unsent"), 0);

  const agentAfter = await scrapeUntil(
    agentMetricsUrl,
    (m) => m.value("fem_agent_runs_active") === 0 && m.value("fem_agent_runs_finished_total") === 1,
    10_000,
    "the agent's metrics to show the run finished",
  );
  assert.ok((agentAfter.value("fem_agent_journal_records") ?? 0) >= 1);
  assert.ok((agentAfter.value("fem_agent_journal_bytes") ?? 0) > 0);
  assert.is(agentAfter.value("fem_agent_outbox_pending"), 0);
});

test("labels carry no node, run or user identifiers", async () => {
  const m = await scrape(metricsUrl());
  const allowed = new Set(["state", "outcome", "le", "version", "major", "minor", "patch", "type", "kind", "space"]);
  for (const sample of m.samples) {
    for (const label of Object.keys(sample.labels)) assert.ok(allowed.has(label), `${sample.name} has label ${label}`);
  }
});

test("the Grafana dashboard under docs/ queries only metrics that exist", async () => {
  const { readFile } = await import("node:fs/promises");
  const { fileURLToPath } = await import("node:url");
  const dashboard = await readFile(fileURLToPath(new URL("../../../docs/grafana-dashboard.json", import.meta.url)), "utf8");
  const names = new Set([...dashboard.matchAll(/\b((?:fem|process|nodejs)_[a-z_]+)/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, "")));
  const [orchestrator, agent] = await Promise.all([scrape(metricsUrl()), scrape(agentMetricsUrl)]);
  for (const name of names) assert.ok(orchestrator.types.has(name) || agent.types.has(name), `${name} is in the dashboard but not exported`);
});

test.run();
