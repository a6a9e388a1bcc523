/**
 * A frozen instance (SIGSTOP for a minute: a long GC pause, a stalled VM) holds no work hostage:
 * the broker drops its connections within 15 s (AMQP heartbeats, FEM_AMQP_HEARTBEAT_SECONDS) and
 * hands the node events it had prefetched to the other instance; PostgreSQL ends its sessions left
 * inside a transaction (FEM_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS), so no scheduler, relay or audit lock
 * of its blocks the other; every run ends while it is frozen, and once it resumes, each ended once
 * and ran once.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { QUEUES } from "../../src/messaging/contracts.js";
import { orchestratorConnectionName } from "../../src/messaging/topology.js";
import { spawnAgent, type AgentProcess } from "../support/agent.js";
import { management } from "../support/broker.js";
import { createSharedServices, type SharedServices } from "../support/cluster.js";
import { addToTestProject, createTestProject, gqlOk } from "../support/graphql.js";
import { registerMarkTool, SUBMIT } from "../support/fixtures.js";
import { spawnOrchestrator, type OrchestratorProcess } from "../support/orchestrator-process.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("a frozen orchestrator instance");
let services: SharedServices;
let markers: string;
const agents: AgentProcess[] = [];
const orchestrators: OrchestratorProcess[] = [];
const RUNS_PER_WORKFLOW = 150;
const FREEZE_MS = 60_000;
/** B stays frozen until every run ended, at least FREEZE_MS; a loaded machine (2 shared cores) may need longer than a minute for 300 runs. */
const MAX_FREEZE_MS = 180_000;
/** Bound on the broker noticing the frozen instance and handing its node events to the other. */
const RELEASE_WITHIN_MS = 15_000;

test.before(async () => {
  services = await createSharedServices();
  markers = await mkdtemp(join(tmpdir(), "fem-frozen-"));
});

test.after(async () => {
  for (const o of orchestrators) if (o.child.exitCode === null) o.child.kill("SIGCONT");
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(orchestrators.map((o) => o.terminate().catch(() => o.kill9())));
  await services?.dispose();
  await rm(markers, { recursive: true, force: true });
});

/** Names of the vhost's AMQP connections that belong to an instance. */
async function connectionsOf(instanceId: string): Promise<string[]> {
  const all = (await management("GET", `/vhosts/${encodeURIComponent(services.vhost.name)}/connections`)) as { name: string; client_properties?: { connection_name?: string } }[];
  return all.filter((c) => c.client_properties?.connection_name === orchestratorConnectionName(instanceId)).map((c) => c.name);
}

async function openRuns(): Promise<number> {
  const [row] = await services.sql<{ open: string }>(`select count(*) filter (where state not in ('SUCCEEDED','FAILED','CANCELLED','SKIPPED')) open from run`);
  return Number(row.open);
}

test(`SIGSTOP of one of two instances for at least ${FREEZE_MS / 1000} s: its node events go to the other within ${RELEASE_WITHIN_MS / 1000} s, no lock of its blocks the other, every run ends once`, async () => {
  const env = { DATABASE_URL: services.db.url, AMQP_URL: services.vhost.url, FEM_HEARTBEAT_INTERVAL_MS: "1000" };
  const a = await spawnOrchestrator({ ...env, FEM_INSTANCE_ID: "frozen-test-a" }, 120_000);
  const b = await spawnOrchestrator({ ...env, FEM_INSTANCE_ID: "frozen-test-b" }, 120_000);
  orchestrators.push(a, b);
  await createTestProject(a.url);
  for (const id of ["frozen-1", "frozen-2"]) {
    const { registerNode } = await gqlOk(a.url, `mutation($id: ID!) { registerNode(input: { id: $id, capacity: 8 }) { credential } }`, { id });
    await addToTestProject(a.url, [id]);
    agents.push(await spawnAgent({ nodeId: id, amqpUrl: services.vhost.url, credential: registerNode.credential, sandboxDir: join(markers, `sandbox-${id}`), capacity: 8, heartbeatIntervalMs: 1_000 }));
  }
  // Each execution appends one line to its task's marker file: lines = executions.
  await registerMarkTool(a.url);
  const submit = (url: string, w: number) =>
    gqlOk(url, SUBMIT, {
      input: {
        name: `frozen ${w}`,
        tasks: Array.from({ length: RUNS_PER_WORKFLOW }, (_, i) => {
          const key = `w${w}-t${i}`;
          return { key, tool: "mark@1", nodes: [i % 2 ? "frozen-1" : "frozen-2"], params: { key, file: join(markers, key) } };
        }),
      },
    });
  // The management API lists a connection only after its next stats emission (seconds).
  await waitUntil(async () => (await connectionsOf("frozen-test-b")).length > 0 || undefined, 30_000, "B's connections, named after it, listed by the management API");

  // Freeze B in the middle of the first workflow, while node events stream to both instances.
  await submit(b.url, 0);
  await waitUntil(async () => Number((await services.sql<{ n: string }>(`select count(*) n from run where state = 'SUCCEEDED'`))[0].n) >= 20, 60_000, "the first runs to succeed", 100);
  b.child.kill("SIGSTOP");
  const frozenAt = Date.now();
  try {
    await submit(a.url, 1);
    await waitUntil(async () => ((await connectionsOf("frozen-test-b")).length === 0 ? true : undefined), RELEASE_WITHIN_MS + 5_000, "the broker to drop the frozen instance's connections", 250);
    const droppedMs = Date.now() - frozenAt;
    assert.ok(droppedMs <= RELEASE_WITHIN_MS, `the broker dropped B after ${droppedMs} ms`);
    // Whatever B held unacked is back in the queue and taken by A: nothing waits for B.
    await waitUntil(async () => ((await openRuns()) === 0 ? true : undefined), frozenAt + MAX_FREEZE_MS - Date.now(), "every run to end while B is frozen", 250).catch(async (err: unknown) => {
      const states = await services.sql(`select state, count(*) n from run group by 1`);
      const locks = await services.sql(`select locktype, mode, granted, objid, pid from pg_locks where locktype in ('advisory', 'transactionid') or not granted`);
      const sessions = await services.sql(`select pid, state, now() - state_change as for, left(query, 120) as query from pg_stat_activity where datname = current_database()`);
      const queues = await management("GET", `/queues/${encodeURIComponent(services.vhost.name)}?columns=name,messages_ready,messages_unacknowledged,consumers`);
      console.log(JSON.stringify({ states, locks, sessions, queues }), a.output().slice(-2_000), agents.map((x) => x.output().slice(-800)).join("\n---\n"));
      throw err;
    });
    console.log(`    (B's connections dropped ${droppedMs} ms after SIGSTOP; all ${2 * RUNS_PER_WORKFLOW} runs ended ${Date.now() - frozenAt} ms after it)`);
    // The management API counts consumers from its stats, which lag the broker by a few seconds.
    const consumers = async () =>
      ((await management("GET", `/queues/${encodeURIComponent(services.vhost.name)}/${encodeURIComponent(QUEUES.nodeEvents)}`)) as { consumers: number }).consumers;
    await waitUntil(async () => ((await consumers()) === 1 ? true : undefined), 30_000, "only A consuming node events (management stats)", 500).catch(async (err: unknown) => {
      console.log(`    node-events consumers still listed: ${await consumers()}`);
      throw err;
    });
    await sleep(Math.max(0, frozenAt + FREEZE_MS - Date.now()));
  } finally {
    b.child.kill("SIGCONT");
  }

  // B resumes: it reconnects and carries on, and changes nothing that already ended.
  await waitUntil(async () => ((await connectionsOf("frozen-test-b")).length > 0 ? true : undefined), 60_000, "B to reconnect after SIGCONT", 500);
  await gqlOk(b.url, `{ nodes { nodes { id } } }`);
  const third = await submit(b.url, 2);
  assert.ok(third.submitWorkflow.id, "B takes work again");
  await waitUntil(async () => ((await openRuns()) === 0 ? true : undefined), 120_000, "the runs submitted through B after it resumed to end", 250);

  const runs = await services.sql<{ key: string; attempt: number; state: string; failure_reason: string | null; message: string | null }>(
    `select t.key, r.attempt, r.state, r.failure_reason, r.message from run r join task t on t.id = r.task_id`,
  );
  assert.is(runs.length, 3 * RUNS_PER_WORKFLOW, "no attempt was added");
  assert.equal(runs.filter((r) => r.state !== "SUCCEEDED"), [], "every run succeeded");
  for (const run of runs) {
    const lines = (await readFile(join(markers, run.key), "utf8")).trim().split("\n");
    assert.is(lines.length, 1, `${run.key} executed ${lines.length} times`);
  }
  const [outbox] = await services.sql<{ unsent: string }>(`select count(*) filter (where sent_at is null) unsent from outbox`);
  assert.is(Number(outbox.unsent), 0);
});

test.run();
