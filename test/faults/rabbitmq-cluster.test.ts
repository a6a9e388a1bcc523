/**
 * A three-node RabbitMQ cluster on this machine (beside, never instead of, rabbit@localhost): two
 * orchestrator processes and two agents, each given all three nodes' URLs in its own order, run a
 * workflow of 300 runs; the node that the first orchestrator and the first agent are connected to,
 * and that leads some quorum queues, is stopped mid-run and brought back.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnAgent, type AgentProcess } from "../support/agent.js";
import { createSharedServices, type SharedServices } from "../support/cluster.js";
import { getWorkflow, registerShellTool, SUBMIT, TERMINAL, type WorkflowView } from "../support/fixtures.js";
import { addToTestProject, createTestProject, gqlOk } from "../support/graphql.js";
import { spawnOrchestrator, type OrchestratorProcess } from "../support/orchestrator-process.js";
import { startRabbitCluster, type RabbitCluster } from "../support/rabbitmq-cluster.js";
import { sleep, waitUntil, withTimeout } from "../support/wait.js";

const test = suite("RabbitMQ cluster");

const TASKS = 150;
const NODES = ["site-a", "site-b"];
const LINES = 10;
const CAPACITY = 8;
/** Orchestrators declare their topology on three nodes of a loaded machine: more than the usual 30 s. */
const START_TIMEOUT_MS = 90_000;

let cluster: RabbitCluster | undefined;
let services: SharedServices | undefined;
let workDir: string | undefined;
const orchestrators: OrchestratorProcess[] = [];
const agents: AgentProcess[] = [];

test.after(async () => {
  // Every step bounded and independent: one failing must not leave the others running.
  await Promise.all(agents.map((a) => withTimeout(a.stop(), 15_000, "an agent to stop").catch(() => a.kill9().catch(() => undefined))));
  await Promise.all(orchestrators.map((o) => o.terminate(20_000).catch(() => o.kill9().catch(() => undefined))));
  await withTimeout(cluster?.dispose() ?? Promise.resolve(), 90_000, "the cluster to stop").catch((err: unknown) => console.error(`    cluster teardown: ${(err as Error).message}`));
  await services?.dispose().catch(() => undefined);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** The URL list starting at node `first` and going round (each client prefers another node). */
const rotated = (urls: string[], first: number) => [...urls.slice(first), ...urls.slice(0, first)].join(",");

/** A process's last warnings and errors. */
const warningsOf = (o: { output(): string }) =>
  o
    .output()
    .split("\n")
    .filter((l) => /warn|error|"level":(40|50)/i.test(l))
    .slice(-15)
    .join("\n");

async function runsByState(): Promise<Map<string, number>> {
  const rows = await services!.sql<{ node_id: string; n: string }>(`select node_id, count(*) n from run where state = 'SUCCEEDED' group by node_id`);
  return new Map(rows.map((r) => [r.node_id, Number(r.n)]));
}

test("a broker node leading quorum queues stops mid-run and comes back: every run ends once, no log line is lost", async () => {
  const clusterStarted = Date.now();
  cluster = await startRabbitCluster(3);
  console.log(`    (three-node cluster formed in ${Date.now() - clusterStarted} ms: ${cluster.nodes.map((n) => n.nodeName).join(", ")})`);
  const [node1] = cluster.nodes as [RabbitCluster["nodes"][number], ...RabbitCluster["nodes"]];
  services = await createSharedServices({ name: cluster.vhost, url: cluster.amqpUrls[0]!, drop: async () => undefined });
  workDir = await mkdtemp(join(tmpdir(), "fem-cluster-"));
  const signingKeyFile = join(workDir, "orchestrator-key.pem");
  const common = { DATABASE_URL: services.db.url, FEM_SIGNING_KEY_FILE: signingKeyFile, FEM_ARTIFACT_DIR: join(workDir, "artifacts"), LOG_LEVEL: "info" };
  // Orchestrator A prefers node 1, B node 2; A starts first, so it migrates and declares the topology.
  orchestrators.push(await spawnOrchestrator({ ...common, FEM_INSTANCE_ID: "a", AMQP_URL: rotated(cluster.amqpUrls, 0), FEM_RABBITMQ_MANAGEMENT_URL: rotated(cluster.managementUrls, 0) }, START_TIMEOUT_MS));
  orchestrators.push(await spawnOrchestrator({ ...common, FEM_INSTANCE_ID: "b", AMQP_URL: rotated(cluster.amqpUrls, 1), FEM_RABBITMQ_MANAGEMENT_URL: rotated(cluster.managementUrls, 1) }, START_TIMEOUT_MS));
  const [a, b] = orchestrators as [OrchestratorProcess, OrchestratorProcess];
  await createTestProject(a.url);
  const credentials = new Map<string, string>();
  for (const id of NODES) {
    const data = await gqlOk<{ registerNode: { credential: string } }>(a.url, `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { credential } }`, { input: { id, capacity: CAPACITY } });
    credentials.set(id, data.registerNode.credential);
  }
  await addToTestProject(a.url, NODES);
  // site-a prefers node 1 (like A), site-b node 2 (like B).
  for (const [i, id] of NODES.entries()) {
    agents.push(
      await spawnAgent({
        nodeId: id,
        amqpUrl: rotated(cluster.amqpUrls, i),
        credential: credentials.get(id)!,
        sandboxDir: join(workDir, id),
        capacity: CAPACITY,
        heartbeatIntervalMs: 500,
        env: { FEM_ORCHESTRATOR_PUBLIC_KEY_FILE: `${signingKeyFile}.pub`, FEM_ALLOW_UNSIGNED: "false" },
      }),
    );
  }
  const tool = await registerShellTool(a.url, "lines", 'i=1; while [ $i -le $0 ]; do echo "$1 line $i"; i=$((i+1)); sleep 0.05; done', [
    { id: "n", type: "INT", position: 2, default: LINES },
    { id: "marker", type: "STRING", position: 3 },
  ]);

  const tasks = Array.from({ length: TASKS }, (_, i) => ({ key: `t${i}`, tool, nodes: NODES, params: { marker: `m${i}` } }));
  const submitted = Date.now();
  // Half the tasks through each instance.
  const [first, second] = await Promise.all([
    gqlOk(a.url, SUBMIT, { input: { name: "cluster-a", tasks: tasks.slice(0, TASKS / 2) } }),
    gqlOk(b.url, SUBMIT, { input: { name: "cluster-b", tasks: tasks.slice(TASKS / 2) } }),
  ]);
  const workflowIds: string[] = [first.submitWorkflow.id, second.submitWorkflow.id];
  const total = TASKS * NODES.length;

  await waitUntil(async () => [...(await runsByState()).values()].reduce((x, y) => x + y, 0) >= total / 5, 120_000, "a fifth of the runs to succeed");
  // The quorum queues whose leader is node 1 (the node-events queue, that A declared through it, at least).
  const queues = (await cluster.management(node1, `/queues/${encodeURIComponent(cluster.vhost)}`)) as { name: string; type: string; leader?: string; members?: string[] }[];
  const quorum = queues.filter((q) => q.type === "quorum");
  assert.ok(quorum.length >= 5 && quorum.every((q) => q.members?.length === 3), `quorum queues with a member on each node: ${JSON.stringify(quorum.map((q) => [q.name, q.members]))}`);
  const led = quorum.filter((q) => q.leader === node1.nodeName).map((q) => q.name);
  assert.ok(led.length > 0, `node 1 leads some queues (leaders: ${JSON.stringify(quorum.map((q) => [q.name, q.leader]))})`);

  const before = await runsByState();
  const stopped = Date.now();
  await node1.stop();
  const stopMs = Date.now() - stopped;
  // Work goes on through the two nodes left, on both sites (site-a's agent and A moved off node 1).
  const during = await waitUntil(
    async () => {
      const now = await runsByState();
      return NODES.every((id) => (now.get(id) ?? 0) >= (before.get(id) ?? 0) + 10) ? now : undefined;
    },
    60_000,
    "runs on both sites to succeed while node 1 is down",
  );
  await sleep(1_000);
  const restarted = Date.now();
  await node1.start(90_000);
  const names = cluster.nodes.map((n) => n.nodeName).sort();
  await waitUntil(async () => JSON.stringify(await cluster!.runningNodes(node1)) === JSON.stringify(names), 30_000, "node 1 to rejoin the cluster");
  console.log(
    `    (node 1 led ${led.length} of ${quorum.length} quorum queues (${led.slice(0, 4).join(", ")}${led.length > 4 ? ", …" : ""}); stopped in ${stopMs} ms at ${[...before.values()].reduce((x, y) => x + y, 0)}/${total} runs; ` +
      `${[...during.values()].reduce((x, y) => x + y, 0)} succeeded while it was down; back in ${Date.now() - restarted} ms)`,
  );

  const finished: WorkflowView[] = await Promise.all(
    workflowIds.map((id) =>
      waitUntil(async () => {
        const w = await getWorkflow(a.url, id);
        return TERMINAL.includes(w.state) ? w : undefined;
      }, 150_000, "the workflows to finish", 500),
    ),
  ).catch(async (err: unknown) => {
    // Seen twice in CI (2026-12-02), not reproduced alone: say where the runs, tasks and workflows stand and what each process warned of.
    // Every run had SUCCEEDED: a task or workflow refreshed by two instances at once was left RUNNING (fixed; test/db/progress-race.test.ts).
    const states = await services!.sql(`select node_id, state, dispatched_at is not null as dispatched, count(*) n from run group by 1, 2, 3 order by 1, 2`);
    const outbox = await services!.sql(`select count(*) filter (where sent_at is null) unsent, count(*) total from outbox`);
    const progress = await services!.sql(`select w.id, w.state, (select json_object_agg(s.state, s.n) from (select state, count(*) n from task t where t.workflow_id = w.id group by 1) s) as tasks from workflow w`);
    console.log(`    runs by node and state: ${JSON.stringify(states)}; outbox: ${JSON.stringify(outbox)}; workflows and their tasks by state: ${JSON.stringify(progress)}`);
    for (const [i, o] of [...orchestrators, ...agents].entries()) console.log(`    --- process ${i}\n${warningsOf(o)}`);
    throw err;
  });
  console.log(`    (${total} runs finished ${Date.now() - submitted} ms after submission)`);
  const runs = finished.flatMap((w) => w.tasks.flatMap((t) => t.runs.map((r) => ({ ...r, key: t.key }))));
  const failed = runs.filter((r) => r.state !== "SUCCEEDED" || r.attempt !== 1);
  if (failed.length > 0) {
    console.log(`    runs not SUCCEEDED at attempt 1: ${JSON.stringify(failed.slice(0, 10).map((r) => [r.key, r.node.id, r.attempt, r.state, r.failureReason, r.message]))}`);
    for (const [i, o] of [...orchestrators, ...agents].entries()) console.log(`    --- process ${i}\n${warningsOf(o)}`);
    const letters = await services.sql(`select routing_key, reason, delivery_count, count(*) n from dead_letter group by 1, 2, 3`);
    console.log(`    dead letters: ${JSON.stringify(letters)}`);
  }
  for (const w of finished) assert.is(w.state, "SUCCEEDED", `workflow ${w.id}`);
  assert.is(runs.length, total, "one run per task and node: none retried or duplicated");
  assert.ok(runs.every((r) => r.state === "SUCCEEDED" && r.attempt === 1 && r.exitCode === 0), "every run succeeded at its first attempt");

  // Each run started once and stored every line once, gap-free and in order.
  const lines = await services.sql<{ run_id: string; seq: number; stream: string; text: string }>(
    `select run_id, seq, stream, text from log_line where run_id in (select id from run) order by run_id, seq`,
  );
  const byRun = new Map<string, { seq: number; stream: string; text: string }[]>();
  for (const line of lines) byRun.set(line.run_id, [...(byRun.get(line.run_id) ?? []), line]);
  for (const run of runs) {
    const own = byRun.get(run.id) ?? [];
    assert.equal(own.map((l) => l.seq), Array.from({ length: own.length }, (_, i) => i + 1), `run ${run.id}: seq gap-free`);
    assert.is(own.length, run.logLineCount, `run ${run.id}: the line counter counts each stored line once`);
    const marker = `m${run.key.slice(1)}`;
    assert.equal(
      own.filter((l) => l.stream === "STDOUT").map((l) => l.text),
      Array.from({ length: LINES }, (_, i) => `${marker} line ${i + 1}`),
      `run ${run.id} (${run.key} on ${run.node.id}): every line once, in order`,
    );
    assert.is(own.filter((l) => l.stream === "SYSTEM" && l.text.startsWith("starting:")).length, 1, `run ${run.id} started once`);
  }
  const [dead] = await services.sql<{ n: string }>(`select count(*) n from dead_letter`);
  assert.is(Number(dead!.n), 0, "nothing was dead-lettered");

  // The clients on node 1 moved to another node of the cluster.
  const port1 = `:${node1.amqpPort}/`;
  const siteA = agents[0]!.output();
  assert.match(siteA, /lost the connection to RabbitMQ at amqp:\/\/[^ ]*127\.0\.0\.1:\d+/);
  const reconnected = /reconnected to RabbitMQ at (\S+)/.exec(siteA)?.[1] ?? "";
  assert.ok(reconnected !== "" && !reconnected.includes(port1), `site-a's agent reconnected to another node (${reconnected})`);
  // Logged on reconnection only (the first connection is made before the listener is attached).
  const aMoved = a.output().split("\n").filter((l) => l.includes("broker connection (re)established"));
  assert.ok(aMoved.length > 0 && !aMoved[0]!.includes(port1), `orchestrator A reconnected to another node: ${aMoved[0] ?? "(no line)"}`);
});

test.run();
