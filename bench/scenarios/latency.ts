/**
 * Latency: submit → RUNNING and → SUCCEEDED of a no-op run (`sh -c true`) on a warm agent, as a
 * `runUpdated` subscriber sees them (it subscribes as soon as the mutation answers; a sample whose
 * RUNNING came before the subscription is counted as missed, and its time is when the orchestrator
 * (in this process) handed RUNNING to the run's subscribers). Each hop is read from the run's and
 * the outbox's timestamps (one clock: agent and orchestrator share the machine).
 */
import type { Client } from "graphql-ws";
import { createTestEnv } from "../../test/support/env.js";
import { registerShellTool } from "../../test/support/fixtures.js";
import { gqlOk, wsClient } from "../../test/support/graphql.js";
import { withTimeout } from "../../test/support/wait.js";
import { flag, load1, percentile, type ScenarioResult } from "../lib.js";

const SUBMIT_ONE = `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { tasks { runs { id } } } }`;

/** performance.now() when each run's RUNNING was handed to its subscribers (the pubsub wrapped). */
const announcedRunning = new Map<string, number>();

interface Sample {
  runningMs: number | null;
  announcedMs: number | null;
  succeededMs: number;
  runId: string;
}

async function sample(url: string, client: Client, tool: string): Promise<Sample> {
  const started = performance.now();
  const data = await gqlOk<{ submitWorkflow: { tasks: { runs: { id: string }[] }[] } }>(url, SUBMIT_ONE, { input: { tasks: [{ key: "t", tool, nodes: ["bench-l"] }] } });
  const runId = data.submitWorkflow.tasks[0].runs[0].id;
  let runningMs: number | null = null;
  let dispose = () => {};
  const succeeded = new Promise<number>((resolve, reject) => {
    dispose = client.subscribe<{ runUpdated: { state: string } }>(
      { query: `subscription($id: ID!) { runUpdated(runId: $id) { state } }`, variables: { id: runId } },
      {
        next: (result) => {
          const state = result.data?.runUpdated.state;
          if (state === "RUNNING") runningMs = performance.now() - started;
          if (state === "SUCCEEDED") resolve(performance.now() - started);
          if (state === "FAILED") reject(new Error(`run ${runId} failed`));
        },
        error: reject,
        complete: () => undefined,
      },
    );
  });
  try {
    const succeededMs = await withTimeout(succeeded, 30_000, `run ${runId} to succeed`);
  const announced = announcedRunning.get(runId);
  return { runningMs, announcedMs: announced === undefined ? null : announced - started, succeededMs, runId };
  } finally {
    dispose();
  }
}

export async function latencyScenario(args: string[]): Promise<ScenarioResult> {
  const samples = flag(args, "samples", 100);
  const before = load1();
  const env = await createTestEnv({ relayPollMs: 500, schedulerPollMs: 500 });
  const client = wsClient(env.orchestrator.wsUrl);
  const pubsub = env.orchestrator.pubsub;
  const publish = pubsub.publish.bind(pubsub);
  pubsub.publish = (topic, payload) => {
    const run = payload as { id?: string; state?: string };
    if (topic.startsWith("run:") && run.state === "RUNNING" && run.id) announcedRunning.set(run.id, performance.now());
    publish(topic, payload);
  };
  try {
    await env.registerNodes(["bench-l"], 4);
    const tool = await registerShellTool(env.orchestrator.url, "noop", "true", []);
    await env.startAgent("bench-l", { capacity: 4 });
    for (let i = 0; i < 5; i++) await sample(env.orchestrator.url, client, tool);
    const results: Sample[] = [];
    for (let i = 0; i < samples; i++) results.push(await sample(env.orchestrator.url, client, tool));
    const seen = results.filter((r) => r.runningMs !== null).length;
    const running = results.map((r) => r.runningMs ?? r.announcedMs).filter((ms): ms is number => ms !== null);
    const succeeded = results.map((r) => r.succeededMs);
    const hops = await env.sql<Record<string, number>>(
      `select
         percentile_cont(0.5) within group (order by extract(epoch from r.dispatched_at - r.created_at) * 1000) as "submit commit → scheduled",
         percentile_cont(0.5) within group (order by extract(epoch from o.sent_at - o.created_at) * 1000) as "scheduled → confirmed in queue",
         percentile_cont(0.5) within group (order by extract(epoch from r.accepted_at - o.sent_at) * 1000) as "queue → agent accepted",
         percentile_cont(0.5) within group (order by extract(epoch from r.started_at - r.accepted_at) * 1000) as "accepted → process started",
         percentile_cont(0.5) within group (order by extract(epoch from r.finished_at - r.started_at) * 1000) as "process ran"
       from run r join outbox o on o.payload->>'runId' = r.id::text and o.payload->>'type' = 'run.dispatch'
       where r.id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`,
      [JSON.stringify(results.map((r) => r.runId))],
    );
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
      breakdown: Object.entries(hops[0] ?? {}).map(([label, ms]) => ({ label: `${label} (p50)`, ms: Math.round(Number(ms) * 10) / 10 })),
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
