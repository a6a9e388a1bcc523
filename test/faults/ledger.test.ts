import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnAgent, type AgentProcess } from "../support/agent.js";
import { rabbitmqctl } from "../support/broker.js";
import { createSharedServices, type SharedServices } from "../support/cluster.js";
import { addToTestProject, createTestProject, gqlOk } from "../support/graphql.js";
import { registerMarkTool, SUBMIT } from "../support/fixtures.js";
import { spawnOrchestrator, type OrchestratorProcess } from "../support/orchestrator-process.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("the ledger: nothing lost, nothing run twice");
let services: SharedServices;
let markers: string;
const agents: AgentProcess[] = [];
const orchestrators: OrchestratorProcess[] = [];
const WORKFLOWS = 4;
const TASKS_PER_WORKFLOW = Number(process.env.TEST_LEDGER_TASKS_PER_WORKFLOW ?? 250);
const TOTAL = WORKFLOWS * TASKS_PER_WORKFLOW;

test.before(async () => {
  services = await createSharedServices();
  markers = await mkdtemp(join(tmpdir(), "fem-ledger-"));
});

test.after(async () => {
  await rabbitmqctl("start_app").catch(() => undefined);
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(orchestrators.map((o) => o.terminate().catch(() => o.kill9())));
  await services?.dispose();
  await rm(markers, { recursive: true, force: true });
});

test(`${TOTAL} runs through a broker restart and a kill -9 of one of two orchestrators: each ends once and ran once per attempt`, async () => {
  const env = { DATABASE_URL: services.db.url, AMQP_URL: services.vhost.url, FEM_HEARTBEAT_INTERVAL_MS: "1000" };
  let a = await spawnOrchestrator(env);
  const b = await spawnOrchestrator(env);
  orchestrators.push(a, b);
  await createTestProject(a.url);
  for (const id of ["ledger-1", "ledger-2"]) {
    const { registerNode } = await gqlOk(a.url, `mutation($id: ID!) { registerNode(input: { id: $id, capacity: 8 }) { node { id } credential } }`, { id });
    await addToTestProject(a.url, [id]);
    agents.push(
      await spawnAgent({ nodeId: id, amqpUrl: services.vhost.url, credential: registerNode.credential, sandboxDir: join(markers, `sandbox-${id}`), capacity: 8, heartbeatIntervalMs: 1_000 }),
    );
  }
  // Each execution appends one line to its task's marker file: lines = executions.
  await registerMarkTool(a.url);
  const submit = (url: string, w: number) =>
    gqlOk(url, SUBMIT, {
      input: {
        name: `ledger ${w}`,
        idempotencyKey: `ledger-${w}`,
        tasks: Array.from({ length: TASKS_PER_WORKFLOW }, (_, i) => {
          const key = `w${w}-t${i}`;
          return { key, tool: "mark@1", nodes: [i % 2 ? "ledger-1" : "ledger-2"], params: { key, file: join(markers, key) } };
        }),
      },
    });

  await submit(a.url, 0);
  await submit(b.url, 1);
  // TEST_LEDGER_FAULTS narrows the faults when hunting a failure (broker, kill, or none).
  const faults = process.env.TEST_LEDGER_FAULTS ?? "broker,kill";
  if (faults.includes("broker")) {
    await rabbitmqctl("stop_app");
    await sleep(2_000);
    await rabbitmqctl("start_app");
  }
  await submit(a.url, 2);
  await sleep(300);
  if (faults.includes("kill")) {
    await a.kill9();
  }
  await submit(b.url, 3);
  if (faults.includes("kill")) {
    a = await spawnOrchestrator(env);
    orchestrators.push(a);
  }
  orchestrators.push(a);

  const started = Date.now();
  await waitUntil(
    async () => {
      const [row] = await services.sql<{ open: string; total: string }>(
        `select count(*) filter (where state not in ('SUCCEEDED','FAILED','CANCELLED','SKIPPED')) open, count(*) total from run`,
      );
      return Number(row.open) === 0 && Number(row.total) >= TOTAL;
    },
    Number(process.env.TEST_LEDGER_TIMEOUT_MS ?? 180_000),
    "every run to end",
    250,
  ).catch(async (err: unknown) => {
    const states = await services.sql(`select state, dispatched_at is not null dispatched, count(*) n from run group by 1, 2`);
    const outbox = await services.sql(`select count(*) filter (where sent_at is null) unsent, count(*) total from outbox`);
    const queues = await rabbitmqctl("list_queues", "-p", services.vhost.name, "name", "messages", "messages_unacknowledged", "consumers");
    const dead = await services.sql(`select reason, delivery_count, routing_key, left(body, 200) body from dead_letter limit 5`);
    console.log("dead letters", JSON.stringify(dead, null, 1));
    const stuck = await services.sql(`select r.id, r.attempt, r.node_id, r.state, r.log_line_count, r.started_at, (select count(*) from log_line l where l.run_id = r.id) lines from run r where r.state = 'RUNNING' limit 5`);
    console.log(JSON.stringify({ states, outbox, stuck }, null, 1), queues, agents.map((x) => x.output().slice(-1500)).join("\n---\n"), orchestrators.map((o) => o.output().slice(-1500)).join("\n---\n"));
    throw err;
  });
  console.log(`    (all ${TOTAL} runs ended ${Date.now() - started} ms after the last fault)`);

  const runs = await services.sql<{ key: string; attempt: number; state: string; started_at: Date | null }>(
    `select t.key, r.attempt, r.state, r.started_at from run r join task t on t.id = r.task_id`,
  );
  const tasks = await services.sql<{ key: string; state: string }>(`select key, state from task`);
  assert.is(tasks.length, TOTAL, "every submitted task exists once");
  const failures = runs.filter((r) => r.state !== "SUCCEEDED");
  assert.equal(failures, [], "every run succeeded");
  assert.is(runs.length, TOTAL, "no attempt was added");
  for (const task of tasks) {
    const lines = (await readFile(join(markers, task.key), "utf8")).trim().split("\n");
    const attempts = runs.filter((r) => r.key === task.key && r.started_at !== null).length;
    assert.is(lines.length, attempts, `${task.key} executed ${lines.length} times for ${attempts} started attempt(s)`);
  }
  const [outbox] = await services.sql<{ unsent: string }>(`select count(*) filter (where sent_at is null) unsent from outbox`);
  assert.is(Number(outbox.unsent), 0);
});

test.run();
