/**
 * A scheduler pass stays a handful of index lookups when the run table grew since PostgreSQL last
 * analysed it (a young database that just stored a large workflow's runs): the statistics still say
 * 30 runs while 100,000 are stored. Before, the pass's dispatch select (runs by id, with their
 * upstream results) turned into a parallel sequential scan of every run, and its inflated cost
 * estimate made PostgreSQL JIT-compile it: ~75 ms of compiling per pass of 8 runs, which slowed a
 * watched workflow 2–3× in the fan-out bench. The dispatched runs' reports, lines and heartbeat
 * are then ingested. Every statement of the pass and of the ingestion is run again with EXPLAIN
 * ANALYZE (in a transaction rolled back): none may read 10,000 rows of run, none may be
 * JIT-compiled; and the dispatches carry the right upstream results.
 */
import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOrm, migrate, type Orm } from "../../src/db/orm.js";
import { ChangeSet } from "../../src/kernel/index.js";
import { createLogger } from "../../src/logger.js";
import { WIRE_VERSION, type RunStateEvent } from "../../src/messaging/contracts.js";
import { storeLogBatches } from "../../src/logs/index.js";
import { recordHeartbeats } from "../../src/nodes/index.js";
import { applyReportedStates, dispatchReadyRuns } from "../../src/runs/index.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { inlineBindings, planNodes, type PlanNode } from "../support/explain.js";

const test = suite("scheduler pass on stale statistics");
const STORED = 100_000;
const NODES = 8;
/** Rows of run a statement of one pass may read at most (it dispatches 8 runs). */
const MAX_RUN_ROWS = 10_000;

let db: TestDatabase;
let orm: Orm;
const statements: { path: string; sql: string }[] = [];
let path = "";
let capturing = false;

const uuid = (group: number, n: number) => `00000000-0000-0000-${group.toString(16).padStart(4, "0")}-${n.toString(16).padStart(12, "0")}`;
const TOOL = uuid(0, 1);
const OLD_WORKFLOW = uuid(1, 1);
const WORKFLOW = uuid(1, 2);
const OLD_TASK = uuid(2, 1);
const UPSTREAM = uuid(2, 2);
const DOWNSTREAM = uuid(2, 3);

test.before(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ databaseUrl: db.url, poolSize: 2 });
  orm.em.getConnection().getKnex().client.on("query", (q: { sql: string; bindings?: unknown[] }) => {
    if (capturing && /^\s*(select|with|update|insert|delete)/i.test(q.sql)) statements.push({ path, sql: inlineBindings(q.sql, q.bindings ?? []) });
  });
  await migrate(orm);
  const conn = orm.em.getConnection();
  // This database's statistics must stay as they are after the first ANALYZE.
  await conn.execute(`alter table run set (autovacuum_enabled = false)`);
  await conn.execute(`insert into tool (id, name, version, executable, args, env, outputs, created_at, resources) values ('${TOOL}', 'noop', '1', '/bin/true', '[]', '{}', '[]', now(), '{}')`);
  await conn.execute(
    `insert into node (id, labels, capacity, launchers, allowed_tools, credential_hash, created_at, updated_at, datasets, registered_resources, connectivity)
     select 'n-' || g, '{}', 4, '["process"]', '[]', 'x', now(), now(), '[]', '{}', 'ONLINE' from generate_series(1, ${NODES}) g`,
  );
  await conn.execute(`insert into workflow (id, content_hash, submitted_at, state) values ('${OLD_WORKFLOW}', 'x', now(), 'SUCCEEDED'), ('${WORKFLOW}', 'y', now(), 'RUNNING')`);
  const task = (id: string, workflow: string, key: string, dependsOn: string[], state: string) =>
    `('${id}', '${workflow}', '${key}', '${TOOL}', '{}', '{}', '[]', '${JSON.stringify(dependsOn)}', now(), '{"maxAttempts":1,"backoffSeconds":1,"retryOn":[]}', '[]', '{}', '[]', '${state}')`;
  await conn.execute(
    `insert into task (id, workflow_id, key, tool_id, params, node_params, node_ids, depends_on_ids, created_at, retry, datasets, resources, inputs, state)
     values ${task(OLD_TASK, OLD_WORKFLOW, "old", [], "SUCCEEDED")}, ${task(UPSTREAM, WORKFLOW, "prepare", [], "SUCCEEDED")}, ${task(DOWNSTREAM, WORKFLOW, "train", [UPSTREAM], "QUEUED")}`,
  );
  // The upstream task succeeded on every node at its second attempt (the first failed); the downstream waits.
  const runs = (task: string, workflow: string, group: number, attempt: number, state: string, result: string) =>
    `insert into run (id, task_id, workflow_id, node_id, attempt, argv, env, created_at, state, queued_at, dispatched_at, finished_at, result)
     select ('00000000-0000-0000-${group.toString(16).padStart(4, "0")}-' || lpad(to_hex(g), 12, '0'))::uuid, '${task}', '${workflow}', 'n-' || g, ${attempt}, '[]', '{}', now(), '${state}', now(),
            ${state === "QUEUED" ? "null" : "now()"}, ${state === "QUEUED" ? "null" : "now()"}, ${result}
     from generate_series(1, ${NODES}) g`;
  await conn.execute(runs(OLD_TASK, OLD_WORKFLOW, 3, 1, "SUCCEEDED", "null"));
  await conn.execute(runs(UPSTREAM, WORKFLOW, 4, 1, "FAILED", "null"));
  await conn.execute(runs(UPSTREAM, WORKFLOW, 5, 2, "SUCCEEDED", `jsonb_build_object('node', 'n-' || g)`));
  await conn.execute(runs(DOWNSTREAM, WORKFLOW, 6, 1, "QUEUED", "null"));
  await conn.execute(`analyze`);
  // Then the table grows: copies of the old workflow's runs, finished, as a large workflow leaves them.
  await conn.execute(
    `insert into run (id, task_id, workflow_id, node_id, attempt, state, argv, env, created_at, finished_at)
     select gen_random_uuid(), task_id, workflow_id, node_id, 100 + g, 'SUCCEEDED', argv, env, now(), now()
     from run, generate_series(1, ${STORED / NODES}) g where workflow_id = '${OLD_WORKFLOW}'`,
  );
});

test.after(async () => {
  await orm?.close(true);
  await db?.drop();
});

test("a pass dispatches with index lookups and without JIT, and carries the upstream results", async () => {
  const [{ reltuples }] = await orm.em.getConnection().execute<{ reltuples: number }[]>(`select reltuples from pg_class where relname = 'run'`);
  assert.ok(reltuples < 100, `the statistics are stale (they say ${reltuples} runs)`);
  const [{ jit }] = await orm.em.getConnection().execute<{ jit: string }[]>(`show jit`);
  assert.is(jit, "off", "the orchestrator's connections do not JIT-compile");

  const count = await capture("scheduler pass", (em) => dispatchReadyRuns(em, 500, new ChangeSet(), { wait: true }).then((d) => d.count));
  assert.is(count, NODES, "every waiting run was dispatched");

  const outbox = await orm.em.getConnection().execute<{ payload: { nodeId: string; upstream: { taskKey: string; nodeId: string; runId: string; result: unknown }[] } }[]>(
    `select payload from outbox where payload->>'type' = 'run.dispatch' order by id`,
  );
  assert.is(outbox.length, NODES);
  for (const { payload } of outbox) {
    assert.is(payload.upstream.length, NODES, "the upstream task's latest run on every node");
    assert.ok(payload.upstream.every((u) => u.taskKey === "prepare" && u.runId.startsWith("00000000-0000-0000-0005-")), "only the succeeded second attempts");
    assert.equal(payload.upstream.map((u) => u.result), Array.from({ length: NODES }, (_, i) => ({ node: `n-${i + 1}` })));
  }

  // The dispatched runs report back: n-1's run is taken, started, prints and ends; n-1 beats.
  const at = new Date().toISOString();
  const runId = uuid(6, 1);
  const report = (state: "ACCEPTED" | "RUNNING" | "SUCCEEDED"): RunStateEvent => ({ type: "run.state", v: WIRE_VERSION, nodeId: "n-1", runId, attempt: 1, state, at, ...(state === "SUCCEEDED" ? { exitCode: 0 } : {}) });
  const changes = new ChangeSet();
  await capture("ingestion: states", (em) => applyReportedStates(em, [report("ACCEPTED"), report("RUNNING")], changes, { maxResultBytes: 65_536 }));
  await capture("ingestion: lines", (em) =>
    storeLogBatches(em, [{ type: "run.logs", v: WIRE_VERSION, nodeId: "n-1", runId, attempt: 1, lines: [{ seq: 1, stream: "STDOUT", at, text: "hello" }] }], changes, { maxLogBytesPerRun: 1_000_000 }),
  );
  await capture("ingestion: end", (em) => applyReportedStates(em, [report("SUCCEEDED")], changes, { maxResultBytes: 65_536 }));
  const health = { cpus: 2, loadAvg1: 0, memoryTotalBytes: 1, memoryFreeBytes: 1, diskFreeBytes: null, gpus: 0, agentVersion: "x" };
  await capture("ingestion: heartbeat", (em) =>
    recordHeartbeats(em, [{ type: "node.heartbeat", v: WIRE_VERSION, nodeId: "n-2", at, capacity: 4, launchers: ["process"], health, activeRuns: [{ runId: uuid(6, 2), attempt: 1 }] }], changes, createLogger("silent")),
  );
  assert.ok(changes.runs.some((r) => r.id === runId && r.state === "SUCCEEDED"), "the run ended");

  const problems: string[] = [];
  for (const where of ["scheduler pass", "ingestion: states", "ingestion: lines", "ingestion: end", "ingestion: heartbeat"]) {
    assert.ok(statements.some((st) => st.path === where), `captured the statements of ${where}`);
  }
  for (const { path: where, sql } of statements) {
    const plan = await explainAnalyze(sql);
    if (plan.JIT) problems.push(`${where}: JIT-compiled: ${sql.slice(0, 120)}`);
    const runRows = planNodes(plan.Plan)
      .filter((n) => n["Relation Name"] === "run")
      .reduce((sum, n) => sum + ((n["Actual Rows"] ?? 0) + (n["Rows Removed by Filter"] ?? 0)) * (n["Actual Loops"] ?? 1), 0);
    if (runRows >= MAX_RUN_ROWS) problems.push(`${where}: read ${runRows} rows of run: ${sql.slice(0, 160)}`);
  }
  console.log(`    (${statements.length} statements explained)`);
  assert.equal(problems, []);
});

/** Runs `work` in a transaction (committed), capturing its statements under `name`. */
async function capture<T>(name: string, work: (em: ReturnType<Orm["em"]["fork"]>) => Promise<T>): Promise<T> {
  path = name;
  capturing = true;
  try {
    return await orm.em.fork().transactional(work);
  } finally {
    capturing = false;
  }
}

/** The statement's plan as it runs now, in a transaction rolled back (writes included). */
async function explainAnalyze(sql: string): Promise<{ Plan: PlanNode; JIT?: unknown }> {
  const knex = orm.em.getConnection().getKnex();
  const rollback = new Error("rollback");
  let plan: { Plan: PlanNode; JIT?: unknown } | undefined;
  await knex
    .transaction(async (trx) => {
      const result = (await trx.raw(`explain (analyze, format json) ${sql.replace(/\?/g, "\\?")}`)) as { rows: { "QUERY PLAN": { Plan: PlanNode; JIT?: unknown }[] }[] };
      plan = result.rows[0]!["QUERY PLAN"][0];
      throw rollback;
    })
    .catch((err: unknown) => {
      if (err !== rollback) throw err;
    });
  return plan!;
}

test.run();
