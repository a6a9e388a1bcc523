/**
 * The hot paths' statements use indexes at scale: with 1,000,000 stored runs (100,000 tasks, 1,000
 * nodes, 1,000,000 published outbox rows; made with generate_series in this suite's own database),
 * the real scheduler pass, relay pass, state-report, log-batch and heartbeat ingestion run once each
 * (their writes rolled back, the relay's against a real vhost), every statement they send is captured
 * and EXPLAINed, and no plan reads run, task, outbox or log_line with a sequential scan (but one
 * known and named below).
 */
import "reflect-metadata";
import { generateKeyPairSync } from "node:crypto";
import amqp from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOrm, migrate, type Orm } from "../../src/db/orm.js";
import { ChangeSet } from "../../src/kernel/index.js";
import { createLogger } from "../../src/logger.js";
import { createDispatchPublisher, type DispatchPublisher } from "../../src/messaging/dispatch-publisher.js";
import { createRelay } from "../../src/messaging/relay.js";
import { EXCHANGE_TYPES, EXCHANGES, WIRE_VERSION } from "../../src/messaging/contracts.js";
import { createInlineSigner } from "../../src/messaging/payload-signer.js";
import { recordHeartbeats } from "../../src/nodes/index.js";
import { storeLogBatches } from "../../src/logs/index.js";
import { applyReportedStates, dispatchReadyRuns, nodeResources, unfinishedRunsOfNode } from "../../src/runs/index.js";
import { createTestVhost, type TestVhost } from "../support/broker.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { inlineBindings, planNodes, type PlanNode } from "../support/explain.js";

const test = suite("hot-path query plans at 1M runs");
const RUNS = Number(process.env.TEST_PLAN_RUNS ?? 1_000_000);
const NODES = 1_000;
const RUNS_PER_TASK = 10;
/** Tables that grow with runs; workflow (1,000 rows here) and node (1,000) are small enough that a sequential scan is the right plan. */
const BIG_TABLES = ["run", "task", "outbox", "log_line"];
/**
 * Sequential scans measured at 1M runs and accepted for now, each with why; any other fails the test.
 * The dispatch payload query of a scheduler pass (500 runs by id, joined to task and tool) hash-joins
 * a sequential scan of task (100,000 rows) rather than 500 index lookups: cheap here, to revisit
 * with the dispatch path's rework.
 */
const KNOWN_SEQ_SCANS = new Set(["scheduler: task"]);

let db: TestDatabase;
let vhost: TestVhost;
let orm: Orm;
let publisher: DispatchPublisher;
let capturing = false;
const statements: { path: string; sql: string }[] = [];
let path = "";
const logger = createLogger("silent");

test.before(async () => {
  db = await createTestDatabase();
  vhost = await createTestVhost();
  // The relay publishes to fem.dispatch, which an orchestrator's topology declares.
  const connection = await amqp.connect(vhost.url);
  await connection.createChannel().then((c) => c.assertExchange(EXCHANGES.dispatch, EXCHANGE_TYPES[EXCHANGES.dispatch], { durable: true }));
  await connection.close();
  orm = await createOrm({ databaseUrl: db.url, poolSize: 2 });
  // knex reports every statement with its bindings; they are inlined as literals to EXPLAIN it.
  orm.em.getConnection().getKnex().client.on("query", (q: { sql: string; bindings?: unknown[] }) => {
    if (!capturing || !/^\s*(select|update|delete|with|insert)/i.test(q.sql)) return;
    statements.push({ path, sql: inlineBindings(q.sql, q.bindings ?? []) });
  });
  await migrate(orm);
  await seed();
  publisher = createDispatchPublisher({ amqpUrl: vhost.url, tls: {}, publishTimeoutMs: 10_000, onReturned: () => undefined }, logger);
});

test.after(async () => {
  await publisher?.stop();
  await orm?.close(true);
  await db?.drop();
  await vhost?.drop();
});

async function seed(): Promise<void> {
  const conn = orm.em.getConnection();
  const tasks = RUNS / RUNS_PER_TASK;
  const started = Date.now();
  await conn.execute(`insert into tool (id, name, version, executable, args, env, outputs, created_at, resources) values ('00000000-0000-0000-0000-000000000001', 'noop', '1', '/bin/true', '[]', '{}', '[]', now(), '{}')`);
  await conn.execute(
    `insert into node (id, labels, capacity, launchers, allowed_tools, credential_hash, created_at, updated_at, datasets, registered_resources, connectivity)
     select 'n-' || g, '{}', 4, '["process"]', '[]', 'x', now(), now(), '[]', '{}', 'ONLINE' from generate_series(1, ${NODES}) g`,
  );
  await conn.execute(`insert into workflow (id, content_hash, submitted_at, state) select ('00000000-0000-0000-0001-' || lpad(to_hex(g), 12, '0'))::uuid, 'x', now(), 'SUCCEEDED' from generate_series(1, ${tasks / 100}) g`);
  await conn.execute(
    `insert into task (id, workflow_id, key, tool_id, params, node_params, node_ids, depends_on_ids, created_at, retry, datasets, resources, inputs, state)
     select ('00000000-0000-0000-0002-' || lpad(to_hex(g), 12, '0'))::uuid, ('00000000-0000-0000-0001-' || lpad(to_hex((g - 1) / 100 + 1), 12, '0'))::uuid,
            't' || g, '00000000-0000-0000-0000-000000000001', '{}', '{}', '[]', '[]', now(), '{"maxAttempts":1,"backoffSeconds":1,"retryOn":["NODE_LOST"]}', '[]', '{}', '[]', 'SUCCEEDED'
     from generate_series(1, ${tasks}) g`,
  );
  // Almost every run ended long ago; the last tasks' runs are waiting (500) or running (500), as in a live system.
  await conn.execute(
    `insert into run (id, task_id, workflow_id, node_id, argv, env, created_at, state, queued_at, dispatched_at, accepted_at, started_at, finished_at)
     select ('00000000-0000-0000-0003-' || lpad(to_hex(g), 12, '0'))::uuid,
            ('00000000-0000-0000-0002-' || lpad(to_hex((g - 1) / ${RUNS_PER_TASK} + 1), 12, '0'))::uuid,
            ('00000000-0000-0000-0001-' || lpad(to_hex((g - 1) / ${RUNS_PER_TASK * 100} + 1), 12, '0'))::uuid,
            'n-' || ((g - 1) % ${NODES} + 1), '[]', '{}', now() - interval '1 day',
            case when g > ${RUNS - 500} then 'QUEUED' when g > ${RUNS - 1_000} then 'RUNNING' else 'SUCCEEDED' end,
            now() - interval '1 day',
            case when g > ${RUNS - 500} then null else now() - interval '1 day' end,
            case when g > ${RUNS - 1_000} and g <= ${RUNS - 500} then now() else null end,
            case when g > ${RUNS - 1_000} and g <= ${RUNS - 500} then now() else null end,
            case when g <= ${RUNS - 1_000} then now() - interval '1 day' else null end
     from generate_series(1, ${RUNS}) g`,
  );
  await conn.execute(`update task set state = 'QUEUED' where id in (select task_id from run where state <> 'SUCCEEDED')`);
  await conn.execute(
    `insert into outbox (message_id, exchange, routing_key, payload, created_at, sent_at, attempts)
     select gen_random_uuid(), 'fem.dispatch', 'n-' || (g % ${NODES} + 1) || '.run', '{}', now() - interval '1 day', now() - interval '1 day', 1 from generate_series(1, ${RUNS}) g`,
  );
  await conn.execute(
    `insert into outbox (message_id, exchange, routing_key, payload, created_at, attempts) select gen_random_uuid(), 'fem.dispatch', 'n-' || (g % 2 + 1) || '.run', '{}', now(), 0 from generate_series(1, 100) g`,
  );
  await conn.execute(`insert into log_line (run_id, seq, stream, at, text) select ('00000000-0000-0000-0003-' || lpad(to_hex(g), 12, '0'))::uuid, 1, 'STDOUT', now(), 'line' from generate_series(1, ${RUNS}) g`);
  await conn.execute(`analyze`);
  console.log(`    (seeded ${RUNS} runs in ${Math.round((Date.now() - started) / 1000)} s)`);
}

/** Runs `work` in a transaction that is rolled back, capturing its statements under `name`. */
async function captured(name: string, work: (em: ReturnType<Orm["em"]["fork"]>) => Promise<unknown>): Promise<void> {
  path = name;
  capturing = true;
  const rollback = new Error("rollback");
  try {
    await orm.em.fork().transactional(async (em) => {
      await work(em);
      throw rollback;
    });
  } catch (err) {
    if (err !== rollback) throw err;
  } finally {
    capturing = false;
  }
}

const runId = (g: number) => `00000000-0000-0000-0003-${g.toString(16).padStart(12, "0")}`;
const nodeOf = (g: number) => `n-${((g - 1) % NODES) + 1}`;

test("the scheduler, relay and ingestion statements never scan run, task, outbox or log_line sequentially", async () => {
  const at = new Date().toISOString();
  const running = RUNS - 600;
  await captured("scheduler", (em) => dispatchReadyRuns(em, 500, new ChangeSet(), { wait: true }));
  await captured("ingestion: state reports", (em) =>
    applyReportedStates(em, [{ type: "run.state", v: WIRE_VERSION, nodeId: nodeOf(running), runId: runId(running), attempt: 1, state: "SUCCEEDED", at, exitCode: 0 }], new ChangeSet(), { maxResultBytes: 65_536 }),
  );
  await captured("ingestion: log batches", (em) =>
    storeLogBatches(em, [{ type: "run.logs", v: WIRE_VERSION, nodeId: nodeOf(running), runId: runId(running), attempt: 1, lines: [{ seq: 1, stream: "STDOUT", at, text: "hello" }] }], new ChangeSet(), { maxLogBytesPerRun: 1_000_000 }),
  );
  const health = { cpus: 2, loadAvg1: 0, memoryTotalBytes: 1, memoryFreeBytes: 1, diskFreeBytes: null, gpus: 0, agentVersion: "x" };
  await captured("ingestion: heartbeats", (em) =>
    recordHeartbeats(em, [{ type: "node.heartbeat", v: WIRE_VERSION, nodeId: nodeOf(running), at, capacity: 4, launchers: ["process"], health, activeRuns: [{ runId: runId(running), attempt: 1 }] }], new ChangeSet(), logger),
  );
  await captured("node removal check", (em) => unfinishedRunsOfNode(em, "n-7"));
  await captured("node resources", (em) => nodeResources(em, ["n-1", "n-2"]));
  const { privateKey } = generateKeyPairSync("ed25519");
  const relay = createRelay(orm, publisher, { pollMs: 60_000, batchSize: 500, signer: createInlineSigner(privateKey) }, logger);
  path = "relay";
  capturing = true;
  try {
    assert.is(await relay.runOnce(), 100, "the relay published the pending rows");
  } finally {
    capturing = false;
    await relay.stop();
  }

  const scans: string[] = [];
  for (const { path: where, sql } of statements) {
    const [row] = await orm.em.getConnection().execute<{ "QUERY PLAN": unknown }[]>(`explain (format json) ${sql}`);
    const seqScans = new Set(
      planNodes((row["QUERY PLAN"] as { Plan: PlanNode }[])[0].Plan)
        .filter((node) => node["Node Type"] === "Seq Scan" && BIG_TABLES.includes(String(node["Relation Name"])))
        .map((node) => String(node["Relation Name"])),
    );
    for (const table of seqScans) {
      if (KNOWN_SEQ_SCANS.has(`${where}: ${table}`)) console.log(`    (known: ${where} scans ${table} sequentially)`);
      else scans.push(`${where}: seq scan of ${table} in ${sql.slice(0, 300)}`);
    }
  }
  const paths = new Set(statements.map((s) => s.path));
  for (const expected of ["scheduler", "ingestion: state reports", "ingestion: log batches", "ingestion: heartbeats", "relay", "node removal check", "node resources"]) {
    assert.ok(paths.has(expected), `captured statements of ${expected}`);
  }
  console.log(`    (${statements.length} statements explained)`);
  assert.equal(scans, []);
});

test.run();
