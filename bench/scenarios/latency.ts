/**
 * Latency: submit → RUNNING and → SUCCEEDED of a no-op run (`sh -c true`) on a warm agent, as a
 * `runUpdated` subscriber sees them (it subscribes as soon as the mutation answers; a sample whose
 * RUNNING came before the subscription is counted as missed, and its time is when the orchestrator
 * (in this process) handed RUNNING to the run's subscribers). Every hop in between is stamped by
 * bench/latency-trace.ts.
 */
import { join } from "node:path";
import type { Client } from "graphql-ws";
import { createTestEnv } from "../../test/support/env.js";
import { registerShellTool } from "../../test/support/fixtures.js";
import { gqlOk, wsClient } from "../../test/support/graphql.js";
import { withTimeout } from "../../test/support/wait.js";
import { flag, load1, percentile, type ScenarioResult } from "../lib.js";
import { now, traceLatency, type LatencyTrace } from "../latency-trace.js";

const SUBMIT_ONE = `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { tasks { runs { id } } } }`;

interface Sample {
  runningMs: number | null;
  announcedMs: number | null;
  succeededMs: number;
  runId: string;
}

async function sample(url: string, client: Client, tool: string, trace: LatencyTrace): Promise<Sample> {
  const started = now();
  const data = await gqlOk<{ submitWorkflow: { tasks: { runs: { id: string }[] }[] } }>(url, SUBMIT_ONE, { input: { tasks: [{ key: "t", tool, nodes: ["bench-l"] }] } });
  const runId = data.submitWorkflow.tasks[0].runs[0].id;
  trace.stamp(runId, "mutationSent", started);
  trace.stamp(runId, "mutationAnswered");
  let runningMs: number | null = null;
  let dispose = () => {};
  const succeeded = new Promise<number>((resolve, reject) => {
    dispose = client.subscribe<{ runUpdated: { state: string } }>(
      { query: `subscription($id: ID!) { runUpdated(runId: $id) { state } }`, variables: { id: runId } },
      {
        next: (result) => {
          const state = result.data?.runUpdated.state;
          if (state === "RUNNING") {
            trace.stamp(runId, "runningSeen");
            runningMs = now() - started;
          }
          if (state === "SUCCEEDED") {
            trace.stamp(runId, "terminalSeen");
            resolve(now() - started);
          }
          if (state === "FAILED") reject(new Error(`run ${runId} failed`));
        },
        error: reject,
        complete: () => undefined,
      },
    );
  });
  try {
    const succeededMs = await withTimeout(succeeded, 30_000, `run ${runId} to succeed`);
    const announced = trace.announcedRunning(runId);
    return { runningMs, announcedMs: announced === undefined ? null : announced - started, succeededMs, runId };
  } finally {
    dispose();
  }
}

export async function latencyScenario(args: string[]): Promise<ScenarioResult> {
  const samples = flag(args, "samples", 100);
  const before = load1();
  // Only the relay's "marked sent" statement is kept: it began when the publish was confirmed.
  const sqlLog: { at: number; sql: string }[] = [];
  const onQuery = (sql: string) => {
    if (!sql.includes("update outbox set sent_at")) return;
    const tookMs = Number(/took (\d+) ms/.exec(sql)?.[1] ?? 0);
    sqlLog.push({ at: now() - tookMs, sql: "update outbox set sent_at" });
  };
  const env = await createTestEnv({ relayPollMs: 500, schedulerPollMs: 500 }, { onQuery });
  const client = wsClient(env.orchestrator.wsUrl);
  const trace = traceLatency(env.orchestrator, sqlLog);
  try {
    await env.registerNodes(["bench-l"], 4);
    const tool = await registerShellTool(env.orchestrator.url, "noop", "true", []);
    await env.startAgent("bench-l", { capacity: 4 });
    for (let i = 0; i < 5; i++) await sample(env.orchestrator.url, client, tool, trace);
    const results: Sample[] = [];
    for (let i = 0; i < samples; i++) results.push(await sample(env.orchestrator.url, client, tool, trace));
    const seen = results.filter((r) => r.runningMs !== null).length;
    const running = results.map((r) => r.runningMs ?? r.announcedMs).filter((ms): ms is number => ms !== null);
    const succeeded = results.map((r) => r.succeededMs);
    const breakdown = await trace.breakdown(env, results.map((r) => r.runId), join(env.sandboxRoot, "bench-l"));
    const p = (values: number[], q: number) => Math.round(percentile(values, q) * 10) / 10;
    const runningP50 = p(running, 50);
    const runningP99 = p(running, 99);
    const succeededP50 = p(succeeded, 50);
    return {
      name: "latency",
      title: `Latency: submit → state seen by a runUpdated subscriber, no-op run, warm agent (${samples} runs one after another)`,
      figures: [
        { label: "submit → RUNNING, p50", value: runningP50, unit: "ms", target: "≤ 15 ms", met: runningP50 <= 15 },
        { label: "submit → RUNNING, p99", value: runningP99, unit: "ms", target: "≤ 50 ms", met: runningP99 <= 50 },
        { label: "submit → SUCCEEDED, p50", value: succeededP50, unit: "ms", target: "≤ 40 ms", met: succeededP50 <= 40 },
        { label: "submit → SUCCEEDED, p99", value: p(succeeded, 99), unit: "ms" },
      ],
      breakdown,
      notes: [
        `${samples - seen} of ${samples} subscribers subscribed after RUNNING was announced (the mutation's answer came later): for those, RUNNING is when it was handed to subscribers`,
      ],
      load: { before, after: load1() },
      at: new Date().toISOString(),
    };
  } finally {
    await client.dispose();
    await env.dispose();
  }
}
