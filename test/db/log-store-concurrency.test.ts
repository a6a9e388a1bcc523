/**
 * Log lines of one run stored by two transactions at once (two batches of one ingestion, or two
 * instances): a run far from its cap is not locked while its lines are planned and inserted, so the
 * second transaction's insert runs beside the first and only the counting waits its turn. A run that
 * the first transaction brought to its cap meanwhile refuses the second's count, which rolls back
 * and is stored again with the run locked, truncated as the cap says. Counting locks runs in id
 * order (no deadlock whatever order batches name them in), and a cancel does not wait for lines
 * being inserted. Within the margin that the other batch in flight may add, a run is locked first.
 */
import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Orm } from "../../src/db/orm.js";
import { ChangeSet } from "../../src/kernel/index.js";
import { WIRE_VERSION, type RunLogsEvent } from "../../src/messaging/contracts.js";
import { LogCapContention, storeLogBatches } from "../../src/logs/index.js";
import { cancelRuns } from "../../src/runs/index.js";
import type { TestDatabase } from "../support/database.js";
import { createSeededDatabase, TOOL_ID, uuid } from "../support/seeded-database.js";
import { waitUntil, withTimeout } from "../support/wait.js";

const test = suite("log lines stored by concurrent transactions");
const MAX_LOG_BYTES = 1_000;
const NODE = "n-1";

let db: TestDatabase;
let orm: Orm;
let nextRun = 1;
/** Releases of the transactions a test holds open: a failing test must not leave one open. */
const held: (() => void)[] = [];

const WORKFLOW = uuid(1, 1);

test.before(async () => {
  ({ db, orm } = await createSeededDatabase({ nodes: 1, poolSize: 6 }));
  await orm.em.getConnection().execute(`insert into workflow (id, content_hash, submitted_at, state) values ('${WORKFLOW}', 'x', now(), 'RUNNING')`);
});

test.after.each(() => {
  for (const release of held.splice(0)) release();
});

test.after(async () => {
  await orm?.close(true);
  await db?.drop();
});

/** A fresh RUNNING run of the node, of a task of its own. */
async function newRun(): Promise<string> {
  const n = nextRun++;
  const id = uuid(3, n);
  const task = uuid(2, n);
  const conn = orm.em.getConnection();
  await conn.execute(
    `insert into task (id, workflow_id, key, tool_id, params, node_params, node_ids, depends_on_ids, created_at, retry, datasets, resources, inputs, state)
     values ('${task}', '${WORKFLOW}', 't${n}', '${TOOL_ID}', '{}', '{}', '["${NODE}"]', '[]', now(), '{"maxAttempts":1,"backoffSeconds":1,"retryOn":[]}', '[]', '{}', '[]', 'RUNNING')`,
  );
  await conn.execute(
    `insert into run (id, task_id, workflow_id, node_id, attempt, argv, env, created_at, state, queued_at, dispatched_at, started_at)
     values ('${id}', '${task}', '${WORKFLOW}', '${NODE}', 1, '[]', '{}', now(), 'RUNNING', now(), now(), now())`,
  );
  return id;
}

/** Lines `from`..`to` of a run, each `bytes` long. */
function lines(runId: string, from: number, to: number, bytes = 100): RunLogsEvent {
  const at = new Date().toISOString();
  const out = [];
  for (let seq = from; seq <= to; seq++) out.push({ seq, stream: "STDOUT" as const, at, text: String(seq).padEnd(bytes, ".") });
  return { type: "run.logs", v: WIRE_VERSION, nodeId: NODE, runId, attempt: 1, lines: out };
}

const store = (em: EntityManager, events: RunLogsEvent[], lockRuns = false) =>
  storeLogBatches(em, events, new ChangeSet(), { maxLogBytesPerRun: MAX_LOG_BYTES, lockRuns });

/** Runs `work` in a transaction that stays open until `release` is called. */
function heldTransaction(work: (em: EntityManager) => Promise<unknown>) {
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  held.push(() => release());
  let stored = () => {};
  const hasStored = new Promise<void>((resolve) => (stored = resolve));
  const done = orm.em.fork().transactional(async (em) => {
    await work(em);
    stored();
    await released;
  });
  return { hasStored, release, done };
}

/** The statement of a backend of this database waiting for a lock (undefined while none waits). */
async function waitingStatement(): Promise<string | undefined> {
  const rows = await orm.em.getConnection().execute<{ query: string }[]>(
    `select query from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and state = 'active'`,
  );
  return rows[0]?.query.trim();
}

async function counters(runId: string) {
  const [row] = await orm.em.getConnection().execute<{ log_line_count: number; log_bytes: number; log_truncated_seq: number | null; lines: number; bytes: number }[]>(
    `select r.log_line_count, r.log_bytes, r.log_truncated_seq,
            (select count(*)::int from log_line l where l.run_id = r.id) as lines,
            (select coalesce(sum(octet_length(text)), 0)::int from log_line l where l.run_id = r.id) as bytes
     from run r where r.id = ?`,
    [runId],
  );
  return row;
}

test("a second transaction inserts a run's lines while the first holds them, and waits only to count them", async () => {
  const runId = await newRun();
  const first = heldTransaction((em) => store(em, [lines(runId, 1, 3)]));
  await withTimeout(first.hasStored, 10_000, "the first transaction to store its lines");
  let secondDone = false;
  const second = orm.em
    .fork()
    .transactional((em) => store(em, [lines(runId, 4, 6)]))
    .finally(() => (secondDone = true));
  // The second is past its insert and waits on the run's row for its count, not before planning.
  const waiting = await waitUntil(waitingStatement, 10_000, "the second transaction to wait for a lock");
  assert.ok(waiting.startsWith("with c as"), `the second transaction waits in its counting update, not in: ${waiting.slice(0, 120)}`);
  assert.not.ok(secondDone, "the second transaction waits for the first to commit");
  first.release();
  await first.done;
  assert.is(await withTimeout(second, 10_000, "the second transaction"), 3, "the second stored its 3 lines");
  const row = await counters(runId);
  assert.is(row.log_line_count, 6);
  assert.is(row.lines, 6);
  assert.is(Number(row.log_bytes), 600);
  assert.is(row.bytes, 600);
});

test("within the margin another batch in flight may add, a run is locked before its lines are planned", async () => {
  const runId = await newRun();
  const first = heldTransaction((em) => store(em, [lines(runId, 1, 3)]));
  await withTimeout(first.hasStored, 10_000, "the first transaction to store its lines");
  // The second sees none of the first's 300 bytes (uncommitted): its own 300 fit under the
  // 1,000-byte cap, but not with 800 to spare for another batch in flight.
  const second = orm.em.fork().transactional((em) => storeLogBatches(em, [lines(runId, 4, 6)], new ChangeSet(), { maxLogBytesPerRun: MAX_LOG_BYTES, unlockedMarginBytes: 800 }));
  const waiting = await waitUntil(waitingStatement, 10_000, "the second transaction to wait for a lock");
  assert.ok(waiting.startsWith("select r.id, r.task_id"), `the second transaction waits to lock the run before planning, not in: ${waiting.slice(0, 120)}`);
  first.release();
  await first.done;
  assert.is(await withTimeout(second, 10_000, "the second transaction"), 3);
  assert.equal(await counters(runId), { log_line_count: 6, log_bytes: 600, log_truncated_seq: null, lines: 6, bytes: 600 });
});

test("a run brought to its cap meanwhile refuses the unlocked count; stored again locked, the log is truncated", async () => {
  const runId = await newRun();
  const first = heldTransaction((em) => store(em, [lines(runId, 1, 6)]));
  await withTimeout(first.hasStored, 10_000, "the first transaction to store its lines");
  // 600 bytes stored (uncommitted) and 600 more planned: each alone is under the 1,000-byte cap.
  const second = orm.em.fork().transactional((em) => store(em, [lines(runId, 7, 12)]));
  await waitUntil(waitingStatement, 10_000, "the second transaction to wait for the run's row");
  first.release();
  await first.done;
  const refused = await withTimeout(second.then(() => null, (err: unknown) => err), 10_000, "the second transaction");
  assert.instance(refused, LogCapContention, "the count past the cap is refused");
  assert.equal(await counters(runId), { log_line_count: 6, log_bytes: 600, log_truncated_seq: null, lines: 6, bytes: 600 }, "the refused transaction left nothing");

  await orm.em.fork().transactional((em) => store(em, [lines(runId, 7, 12)], true));
  const row = await counters(runId);
  assert.ok(row.log_truncated_seq !== null, "the log was truncated");
  assert.is(row.log_line_count, row.lines, "every stored line is counted once");
  const [{ kept }] = await orm.em.getConnection().execute<{ kept: number }[]>(
    `select coalesce(sum(octet_length(text)), 0)::int as kept from log_line where run_id = ? and seq < ?`,
    [runId, row.log_truncated_seq],
  );
  assert.ok(kept <= MAX_LOG_BYTES, `lines below the notice hold ${kept} bytes, within the cap`);
  const [{ above }] = await orm.em.getConnection().execute<{ above: number }[]>(`select count(*)::int as above from log_line where run_id = ? and seq > ?`, [runId, row.log_truncated_seq]);
  assert.is(above, 0, "nothing is stored past the notice");
});

test("transactions naming two runs in opposite orders all commit: counting locks runs in id order", async () => {
  const a = await newRun();
  const b = await newRun();
  const batches = Array.from({ length: 6 }, (_, i) => {
    const from = i * 2 + 1;
    const pair = [lines(a, from, from + 1, 10), lines(b, from, from + 1, 10)];
    return i % 2 === 0 ? pair : pair.reverse();
  });
  await withTimeout(
    Promise.all(batches.map((events) => orm.em.fork().transactional((em) => store(em, events)))),
    20_000,
    "six concurrent transactions",
  );
  for (const runId of [a, b]) {
    const row = await counters(runId);
    assert.is(row.log_line_count, 12);
    assert.is(row.lines, 12);
    assert.is(Number(row.log_bytes), 120);
  }
});

test("a cancel does not wait for a transaction inserting the run's lines", async () => {
  const runId = await newRun();
  // An insert holds a key-share lock on its run (the foreign key), as an unlocked store does until it counts.
  const inserting = heldTransaction((em) =>
    em.getConnection().execute(`insert into log_line (run_id, seq, stream, at, text) values ('${runId}', 1, 'STDOUT', now(), 'x')`, [], "run", em.getTransactionContext()),
  );
  await withTimeout(inserting.hasStored, 10_000, "the insert");
  const cancel = orm.em.fork().transactional((em) => cancelRuns(em, [runId], "test", new ChangeSet()));
  try {
    const cancelled = await withTimeout(cancel, 5_000, "the cancel beside an open insert of the run's lines");
    assert.is(cancelled.length, 1);
  } finally {
    inserting.release();
    await inserting.done;
    await cancel.catch(() => undefined);
  }
});

test.run();
