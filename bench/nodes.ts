/**
 * `npm run bench:nodes -- [nodes=1000] [runs=10000]`: many nodes on one orchestrator. In its own
 * database and vhost it starts an orchestrator process, registers the nodes (rate), starts one
 * simulated agent per node in this process (bench/sim-agent.ts: its own broker user, queues and
 * heartbeats at the default 5 s), submits the runs spread over every node, and reports the time from
 * submit to all SUCCEEDED, the orchestrator's CPU and RSS (from /proc), the broker's memory and
 * queue count. It then removes every node with removeNode (queues deleted one by one) before the
 * vhost goes. Settings of the orchestrator pass through the environment (e.g.
 * FEM_NODE_CONTROL_QUEUE_TYPE=quorum).
 */
import "reflect-metadata";
import { createPublicKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { management } from "../test/support/broker.js";
import { createSharedServices } from "../test/support/cluster.js";
import { createTestProject, gqlOk } from "../test/support/graphql.js";
import { REGISTER_TOOL } from "../test/support/fixtures.js";
import { spawnOrchestrator, type OrchestratorProcess } from "../test/support/orchestrator-process.js";
import { waitUntil } from "../test/support/wait.js";
import { startSimAgent, type SimAgent } from "./sim-agent.js";

const NODES = Number(process.argv[2] ?? 1_000);
const RUNS = Number(process.argv[3] ?? 10_000);
const CAPACITY = Number(process.env.BENCH_NODE_CAPACITY ?? 4);
const CONCURRENCY = 8;
const RUNS_TIMEOUT_MS = Number(process.env.BENCH_RUNS_TIMEOUT_MS ?? 1_800_000);

/** Runs `work` on every item, `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

const TICKS_PER_S = 100;
async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
}
async function rssBytes(pid: number): Promise<number> {
  const match = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}
async function brokerFigures(vhost: string): Promise<{ rssBytes: number; queues: number }> {
  const [node] = (await management("GET", "/nodes?columns=name,mem_used")) as { name: string; mem_used: number }[];
  const queues = (await management("GET", `/queues/${encodeURIComponent(vhost)}?columns=name`)) as unknown[];
  return { rssBytes: node.mem_used, queues: queues.length };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// Each simulated agent holds one AMQP connection, and each node's three quorum queues hold file
// handles from the same budget: past it RabbitMQ 3.10 holds new connections without an error (with
// 1,024 open files, 120 nodes hung and 50 did not). About 8 open files a node, plus a few hundred.
const FILES_PER_NODE = 8;
const [brokerNode] = (await management("GET", "/nodes?columns=fd_total,sockets_total")) as { fd_total: number; sockets_total: number }[];
const filesNeeded = NODES * FILES_PER_NODE + 200;
if (brokerNode && (brokerNode.fd_total < filesNeeded || brokerNode.sockets_total < NODES + 50)) {
  console.error(
    `RabbitMQ has ${brokerNode.fd_total} open files (${brokerNode.sockets_total} sockets), fewer than the ~${filesNeeded} that ${NODES} nodes' connections and queues need: start it with a higher open-file limit (docs/scaling.md, "Many nodes")`,
  );
  process.exit(1);
}

const services = await createSharedServices();

const agents: SimAgent[] = [];
const ids = Array.from({ length: NODES }, (_, i) => `sim-${String(i).padStart(5, "0")}`);
const registered: string[] = [];
let peakRss = 0;
let orchestrator: OrchestratorProcess | null = null;
let sampler: NodeJS.Timeout | null = null;
try {
  const settings = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("FEM_"))) as Record<string, string>;
  orchestrator = await spawnOrchestrator(
    {
      DATABASE_URL: services.db.url,
      AMQP_URL: services.vhost.url,
      FEM_HEARTBEAT_INTERVAL_MS: "5000",
      FEM_MUTATIONS_PER_MINUTE: "1000000",
      FEM_MAX_RUNS_PER_WORKFLOW: String(Math.max(RUNS, 20_000)),
      ...settings,
    },
    120_000,
  );
  const pid = orchestrator.child.pid!;
  sampler = setInterval(() => void rssBytes(pid).then((r) => (peakRss = Math.max(peakRss, r)), () => undefined), 500);
  const url = orchestrator.url;
  await createTestProject(url);
  const idleRss = await rssBytes(pid);
  const brokerBefore = await brokerFigures(services.vhost.name);
  const key = createPublicKey((await gqlOk(url, `{ orchestratorPublicKey }`)).orchestratorPublicKey as string);
  await gqlOk(url, REGISTER_TOOL, { input: { name: "noop", version: "1", executable: "/bin/true" } });

  const credentials = new Map<string, string>();
  const registering = performance.now();
  const cpuBeforeRegistering = await cpuMs(pid);
  await eachLimited(ids, CONCURRENCY, async (id) => {
    const data = await gqlOk(url, `mutation($id: ID!) { registerNode(input: { id: $id, capacity: ${CAPACITY} }) { credential } }`, { id });
    registered.push(id);
    credentials.set(id, data.registerNode.credential as string);
    await gqlOk(url, `mutation($n: ID!) { addProjectNode(project: "test", nodeId: $n) { id } }`, { n: id });
  });
  const registerMs = performance.now() - registering;
  const registerCpuMs = (await cpuMs(pid)) - cpuBeforeRegistering;
  console.log(`registered ${NODES} nodes in ${secs(registerMs)}: ${(NODES / (registerMs / 1000)).toFixed(1)} nodes/s (orchestrator CPU ${secs(registerCpuMs)})`);

  const connecting = performance.now();
  await eachLimited(ids, 20, async (id) => {
    agents.push(await startSimAgent({ amqpUrl: services.vhost.url.replace(/\/\/[^@]*@/, "//"), vhost: services.vhost.name, nodeId: id, credential: credentials.get(id)!, capacity: CAPACITY, orchestratorKey: key }));
  });
  await waitUntil(async () => Number((await services.sql<{ n: string }>(`select count(*) n from node where connectivity = 'ONLINE'`))[0]!.n) === NODES, 120_000, "every node ONLINE", 1_000);
  console.log(`${NODES} simulated agents connected and ONLINE in ${secs(performance.now() - connecting)}`);

  // Idle with every node heartbeating: the steady cost of the fleet.
  const idleCpu0 = await cpuMs(pid);
  await new Promise((r) => setTimeout(r, 20_000));
  const idleCpuPct = (((await cpuMs(pid)) - idleCpu0) / 20_000) * 100;
  const brokerIdle = await brokerFigures(services.vhost.name);
  console.log(`idle with ${NODES} nodes heartbeating every 5 s: orchestrator CPU ${idleCpuPct.toFixed(1)} %, RSS ${mib(await rssBytes(pid))}; broker ${mib(brokerBefore.rssBytes)} → ${mib(brokerIdle.rssBytes)}, ${brokerIdle.queues} queues in the vhost`);

  const tasks = Math.ceil(RUNS / NODES);
  const perTask = Math.ceil(RUNS / tasks);
  const input = {
    project: "test",
    tasks: Array.from({ length: tasks }, (_, t) => ({ key: `t${t}`, tool: "noop@1", nodes: ids.slice(0, perTask) })),
  };
  const total = tasks * perTask;
  const cpu0 = await cpuMs(pid);
  peakRss = 0;
  const submitted = performance.now();
  await gqlOk(url, `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id } }`, { input });
  const answeredMs = performance.now() - submitted;
  await waitUntil(async () => Number((await services.sql<{ n: string }>(`select count(*) n from run where state = 'SUCCEEDED'`))[0]!.n) >= total, RUNS_TIMEOUT_MS, `${total} runs SUCCEEDED`, 500);
  const doneMs = performance.now() - submitted;
  const runCpuMs = (await cpuMs(pid)) - cpu0;
  const brokerBusy = await brokerFigures(services.vhost.name);
  const refused = agents.reduce((n, a) => n + a.counts().refused, 0);
  console.log(
    `${total} runs on ${perTask} nodes: mutation answered in ${secs(answeredMs)}, all SUCCEEDED after ${secs(doneMs)} (${Math.round(total / (doneMs / 1000))} runs/s); ` +
      `orchestrator CPU ${secs(runCpuMs)} (${((runCpuMs / doneMs) * 100).toFixed(0)} % of one core), RSS idle ${mib(idleRss)} / peak ${mib(peakRss)}; broker ${mib(brokerBusy.rssBytes)}; dispatches refused by agents: ${refused}`,
  );
} finally {
  if (sampler) clearInterval(sampler);
  await Promise.all(agents.map((a) => a.stop()));
  const removing = performance.now();
  let removed = 0;
  const url = orchestrator?.url ?? "";
  await eachLimited(registered, 4, async (id) => {
    try {
      await gqlOk(url, `mutation($id: ID!) { setNodeAdminState(id: $id, state: DISABLED) { id } }`, { id });
      await gqlOk(url, `mutation($id: ID!) { removeNode(id: $id) { id } }`, { id });
      removed += 1;
    } catch (err) {
      console.error(`removing ${id}: ${(err as Error).message}`);
    }
  });
  console.log(`removed ${removed} of ${registered.length} nodes (disable + removeNode, 4 at a time) in ${secs(performance.now() - removing)}; ${(await brokerFigures(services.vhost.name).catch(() => ({ queues: -1 }))).queues} queues left in the vhost`);
  await orchestrator?.terminate().catch(() => orchestrator?.kill9());
  // Whatever is left (a node whose removal failed, the orchestrator's own queues) goes one queue at a
  // time too, so the vhost deletion below never has many quorum queues to delete at once.
  const left = (await management("GET", `/queues/${encodeURIComponent(services.vhost.name)}?columns=name`).catch(() => [])) as { name: string }[];
  for (const q of left) await management("DELETE", `/queues/${encodeURIComponent(services.vhost.name)}/${encodeURIComponent(q.name)}`).catch(() => undefined);
  await services.dispose();
}
