/**
 * Fan-out and memory, with the orchestrator in its own process (its RSS alone): a workflow of `runs`
 * no-op runs followed by 1 `workflowEvents` subscriber, then another by `subscribers` subscribers
 * (on a worker thread), with 100,000 stored runs; beside a raw `ws` broadcast of as many messages
 * of the same size to as many clients. RSS idle, loaded (subscribers connected, runs stored) and peak.
 */
import { once } from "node:events";
import { join } from "node:path";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { Worker } from "node:worker_threads";
import { WebSocketServer } from "ws";
import { spawnAgent, type AgentProcess } from "../../test/support/agent.js";
import { createSharedServices } from "../../test/support/cluster.js";
import { registerShellTool } from "../../test/support/fixtures.js";
import { addToTestProject, createTestProject, gqlOk, TEST_ADMIN_TOKEN } from "../../test/support/graphql.js";
import { spawnOrchestrator } from "../../test/support/orchestrator-process.js";
import { waitUntil } from "../../test/support/wait.js";
import { startSubscribers } from "../subscribers.js";
import { flag, load1, rate, rssMiB, type ScenarioResult } from "../lib.js";

const EVENTS = `subscription($id: ID!) { workflowEvents(workflowId: $id) { kind state runId taskId at run { id state attempt } } }`;

async function liveSubscribers(url: string): Promise<number> {
  const text = await (await fetch(`${url.replace(/\/graphql$/, "")}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text();
  return Number(/^fem_live_subscribers (\d+)/m.exec(text)?.[1] ?? 0);
}

async function rawBroadcast(count: number, messages: number, bytes: number): Promise<number> {
  const server = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const worker = new Worker(new URL("../raw-ws-worker.js", import.meta.url), { workerData: { url: `ws://127.0.0.1:${port}`, count, expected: messages, timeoutMs: 300_000 } });
  const done = new Promise<{ problems: string[] }>((resolve, reject) => {
    worker.on("message", (m: { done?: boolean; problems: string[] }) => m.done && resolve(m));
    worker.on("error", reject);
  });
  await new Promise<void>((resolve) => worker.on("message", (m: { ready?: boolean }) => m.ready && resolve()));
  const body = JSON.stringify({ id: "x", type: "next", payload: { data: { pad: "x".repeat(Math.max(0, bytes - 60)) } } });
  const started = performance.now();
  for (let i = 0; i < messages; i++) for (const client of server.clients) client.send(body);
  const result = await done;
  const ms = performance.now() - started;
  await worker.terminate();
  server.close();
  if (result.problems.length > 0) throw new Error(`raw broadcast: ${result.problems.join("; ")}`);
  return rate(count * messages, ms);
}

export async function fanoutScenario(args: string[]): Promise<ScenarioResult> {
  const runCount = flag(args, "runs", 100);
  const subscriberCount = flag(args, "subscribers", 1_000);
  const storedRuns = flag(args, "stored", 100_000);
  // Where the CPU goes: FEM_BENCH_CPU_PROF_DIR=dir writes the orchestrator's profile there at its exit.
  const profileDir = process.env.FEM_BENCH_CPU_PROF_DIR;
  const before = load1();
  const services = await createSharedServices();
  const dir = await mkdtemp(join(tmpdir(), "fem-bench-"));
  const keyFile = join(dir, "key.pem");
  const orchestrator = await spawnOrchestrator({
    DATABASE_URL: services.db.url,
    AMQP_URL: services.vhost.url,
    FEM_SIGNING_KEY_FILE: keyFile,
    FEM_ARTIFACT_DIR: join(dir, "artifacts"),
    FEM_RELAY_POLL_MS: "500",
    FEM_SUBSCRIBER_BUFFER_SIZE: "10000",
    FEM_METRICS_TOKEN: TEST_ADMIN_TOKEN,
    // Every subscriber signs in as the one bench user: one socket each.
    FEM_MAX_SOCKETS_PER_USER: String(subscriberCount + 10),
  }, 30_000, profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []);
  const url = orchestrator.url;
  let agent: AgentProcess | null = null;
  try {
    await createTestProject(url);
    const { registerNode } = await gqlOk<{ registerNode: { credential: string } }>(url, `mutation { registerNode(input: { id: "bench-f", capacity: 8 }) { credential } }`);
    await addToTestProject(url, ["bench-f"]);
    const tool = await registerShellTool(url, "noop", "true", []);
    const startAgent = () =>
      spawnAgent({ nodeId: "bench-f", amqpUrl: services.vhost.url, credential: registerNode.credential, sandboxDir: join(dir, "sandbox"), capacity: 8, heartbeatIntervalMs: 5_000, env: { FEM_ORCHESTRATOR_PUBLIC_KEY_FILE: `${keyFile}.pub` } });
    await waitUntil(async () => (await liveSubscribers(url)) >= 0, 5_000, "metrics");
    const idle = await rssMiB(orchestrator.child.pid!);

    /** Submits while no agent runs (the runs wait in the queue), subscribes, then starts the agent. */
    async function phase(count: number) {
      const submitted = await gqlOk<{ submitWorkflow: { id: string } }>(url, `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id } }`, {
        input: { tasks: Array.from({ length: runCount }, (_, i) => ({ key: `t${i}`, tool, nodes: ["bench-f"] })) },
      });
      const id = submitted.submitWorkflow.id;
      await waitUntil(async () => (await services.sql<{ n: string }>(`select count(*) n from outbox where sent_at is null`))[0].n === "0", 60_000, "the runs in the queue", 50);
      const base = await liveSubscribers(url);
      const subscribers = startSubscribers({ wsUrl: orchestrator.wsUrl, query: EVENTS, variables: { id }, field: "workflowEvents", count, expected: Number.MAX_SAFE_INTEGER, timeoutMs: 600_000, untilWorkflowEnds: true });
      await subscribers.ready;
      // Connecting 1,000 (each signs in and is authorised) takes minutes on a loaded machine.
      await waitUntil(async () => (await liveSubscribers(url)) >= base + count, 300_000, `${count} subscribers`, 100);
      const loaded = await rssMiB(orchestrator.child.pid!);
      agent = await startAgent();
      const done = await subscribers.done;
      const doneAt = Date.now();
      const [times] = await services.sql<{ first: number; last: number }>(
        `select extract(epoch from min(accepted_at)) * 1000 as first, extract(epoch from max(finished_at)) * 1000 as last from run where workflow_id = ?`,
        [id],
      );
      await (agent as AgentProcess).stop();
      agent = null;
      if (done.problems.length > 0) throw new Error(`subscribers: ${done.problems.join("; ")}`);
      return { id, done, loaded, workMs: Number(times.last) - Number(times.first), deliveredMs: doneAt - Number(times.first) };
    }

    const one = await phase(1);
    const runEvents = one.done.kinds[0].RUN ?? 0;
    // Stored runs the instance must not hold in memory: copies of the first workflow's runs, finished.
    await services.sql(
      `insert into run (id, task_id, workflow_id, node_id, attempt, state, argv, env, created_at, finished_at)
       select gen_random_uuid(), task_id, workflow_id, node_id, 100 + g, 'SUCCEEDED', argv, env, now(), now()
       from run, generate_series(1, ?) g where workflow_id = ?`,
      [Math.ceil(storedRuns / runCount), one.id],
    );
    const many = await phase(subscriberCount);
    // Every subscriber of the second workflow must have had the same events in the same order, and
    // in them every run RUNNING and SUCCEEDED once. A task's or the workflow's changes within one
    // change set are announced once, at the state they reached, and a run's ACCEPTED is not
    // announced when its RUNNING got in first (the agent sends the two together), so the other
    // counts vary with how the reports were batched.
    const events = Math.max(...many.done.received);
    const fingerprint = many.done.fingerprints[many.done.received.indexOf(events)];
    const everyRun = (states: Record<string, number>) => states["RUN:RUNNING"] === runCount && states["RUN:SUCCEEDED"] === runCount;
    const short = many.done.received.filter((n, i) => n < events || many.done.fingerprints[i] !== fingerprint || !everyRun(many.done.states[i]!)).length;
    const kindsText = (k: Record<string, number>) => Object.entries(k).sort().map(([kind, n]) => `${n} ${kind}`).join(", ");
    const deliveries = events * subscriberCount;
    const perSecond = rate(deliveries, many.deliveredMs);
    const [messageBytes] = [Math.round(JSON.stringify({ id: "00000000-0000-0000-0000-000000000000", type: "next", payload: { data: { workflowEvents: { kind: "RUN", state: "SUCCEEDED", runId: one.id, taskId: one.id, at: new Date().toISOString(), run: { id: one.id, state: "SUCCEEDED", attempt: 1 } } } } }).length)];
    const raw = await rawBroadcast(subscriberCount, events, messageBytes);
    const peak = await rssMiB(orchestrator.child.pid!);
    const slowdown = many.workMs / one.workMs;
    return {
      name: "fanout",
      title: `Fan-out and memory: ${subscriberCount.toLocaleString("en")} workflowEvents subscribers on one instance, a ${runCount}-run workflow (${events} events), ${storedRuns.toLocaleString("en")} stored runs`,
      figures: [
        {
          label: `deliveries/s to ${subscriberCount} subscribers`,
          value: perSecond,
          unit: "deliveries/s",
          baseline: { label: `raw ws broadcast of ${events} × ${messageBytes} B to ${subscriberCount} clients`, value: raw },
          target: "≥ 30 % of raw",
          met: perSecond / raw >= 0.3 && short === 0,
        },
        {
          label: `workflow time with ${subscriberCount} subscribers`,
          value: Math.round(many.workMs),
          unit: "ms",
          baseline: { label: "with 1 subscriber", value: Math.round(one.workMs) },
          target: "≤ 1.5× of 1 subscriber",
          met: slowdown <= 1.5,
        },
        { label: "orchestrator RSS idle", value: idle.rss, unit: "MiB" },
        { label: `RSS loaded (${subscriberCount} subscribers, ${storedRuns.toLocaleString("en")} stored runs)`, value: many.loaded.rss, unit: "MiB" },
        { label: "RSS peak (VmHWM, whole process life)", value: peak.peak, unit: "MiB", target: "≤ 300 MB", met: peak.peak * 1.048576 <= 300 },
      ],
      breakdown: [
        { label: "workflow, 1 subscriber", ms: Math.round(one.workMs) },
        { label: `workflow, ${subscriberCount} subscribers`, ms: Math.round(many.workMs) },
        { label: `last delivery to ${subscriberCount} subscribers`, ms: Math.round(many.deliveredMs) },
      ],
      notes: [
        short === 0
          ? `every subscriber got the same ${events} events in the same order (${kindsText(many.done.kinds[0])}; with 1 subscriber: ${kindsText(one.done.kinds[0])})`
          : `${short} subscribers missed events or got them out of order (of ${events}: ${kindsText(many.done.kinds[0])}; ${runEvents} RUN events with 1 subscriber)`,
      ],
      load: { before, after: load1() },
      at: new Date().toISOString(),
    };
  } finally {
    if (agent) await (agent as AgentProcess).stop();
    await orchestrator.terminate().catch(() => orchestrator.kill9());
    await services.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}
