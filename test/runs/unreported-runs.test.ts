/**
 * How heartbeats that leave a dispatched run out are counted and when the run is settled, on a real
 * PostgreSQL: only heartbeats sent after the run's last reported change count, a run the node still
 * holds in any way (active, waiting, ended but unreported) is never counted, and a terminal report
 * that arrives first wins.
 */
import "reflect-metadata";
import { randomUUID } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOrm, migrate, type Orm } from "../../src/db/orm.js";
import { ChangeSet } from "../../src/kernel/change-set.js";
import type { HeartbeatEvent } from "../../src/messaging/contracts.js";
import {
  applyReportedStates,
  countUnreportedRuns,
  findUnheldDispatches,
  loseUnreportedRuns,
  settleUnheldDispatches,
} from "../../src/runs/lifecycle/index.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

const test = suite("runs a live node no longer reports");
let db: TestDatabase;
let orm: Orm;

const NODE = "site-u";
const TOOL = randomUUID();
const WORKFLOW = randomUUID();
const OPTIONS = { minHeartbeats: 3, graceMs: 0 };

async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await orm.em.fork().getConnection().execute(text, params, "all")) as T[];
}

test.before(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ databaseUrl: db.url });
  await migrate(orm);
  await sql(`insert into node (id, labels, capacity, launchers, reported_launchers, registered_resources, datasets, allowed_tools, admin_state, connectivity, credential_hash, created_at, updated_at)
             values (?, '{}', 4, '["process"]', '[]', '{}', '[]', '[]', 'ACTIVE', 'ONLINE', 'x', now(), now())`, [NODE]);
  await sql(`insert into tool (id, name, version, executable, launcher, args, env, outputs, resources, created_at) values (?, 't', '1', '/bin/true', 'process', '[]', '{}', '[]', '{}', now())`, [TOOL]);
  await sql(`insert into workflow (id, content_hash, state, submitted_at) values (?, 'h', 'RUNNING', now())`, [WORKFLOW]);
});

test.after(async () => {
  await orm?.close(true);
  await db?.drop();
});

/** A run of its own task (retried once on NODE_LOST), dispatched a minute ago, started at `startedAt` on the node's clock. */
async function insertRun(state: "QUEUED" | "RUNNING", startedAt: Date | null = null): Promise<string> {
  const task = randomUUID();
  const run = randomUUID();
  const retry = JSON.stringify({ maxAttempts: 2, backoffSeconds: 0, retryOn: ["NODE_LOST"] });
  await sql(`insert into task (id, workflow_id, key, tool_id, params, node_params, node_ids, datasets, inputs, depends_on_ids, priority, retry, resources, state, created_at)
             values (?, ?, ?, ?, '{}', '{}', ?, '[]', '[]', '[]', 0, ?, '{}', ?, now())`, [task, WORKFLOW, task, TOOL, JSON.stringify([NODE]), retry, state]);
  await sql(`insert into run (id, task_id, workflow_id, node_id, attempt, state, argv, env, created_at, queued_at, dispatched_at, accepted_at, started_at, log_bytes, log_line_count)
             values (?, ?, ?, ?, 1, ?, '["/bin/true"]', '{}', now(), now(), now() - interval '1 minute', ?, ?, 0, 0)`, [run, task, WORKFLOW, NODE, state, startedAt, startedAt]);
  return run;
}

function heartbeat(at: Date, held: { active?: string[]; waiting?: string[]; unreported?: string[] } = {}, complete = true): HeartbeatEvent {
  const refs = (ids: string[] = []) => ids.map((runId) => ({ runId, attempt: 1 }));
  const event: HeartbeatEvent = {
    type: "node.heartbeat",
    v: 1,
    nodeId: NODE,
    at: at.toISOString(),
    capacity: 4,
    launchers: ["process"],
    health: { cpus: 1, loadAvg1: 0, memoryTotalBytes: 1, memoryFreeBytes: 1, diskFreeBytes: null, gpus: 0, agentVersion: "test" },
    activeRuns: refs(held.active),
  };
  if (complete) Object.assign(event, { waitingRuns: refs(held.waiting), unreportedRuns: refs(held.unreported) });
  return event;
}

async function beat(...events: HeartbeatEvent[]): Promise<void> {
  for (const event of events) await orm.em.fork().transactional((em) => countUnreportedRuns(em, [event]));
}

async function lose(): Promise<string[]> {
  return (await orm.em.fork().transactional((em) => loseUnreportedRuns(em, OPTIONS, new ChangeSet()))).map((r) => r.id);
}

async function runRow(id: string): Promise<{ state: string; failure_reason: string | null; message: string | null; unreported_heartbeats: number }> {
  const [row] = await sql<never>(`select state, failure_reason, message, unreported_heartbeats from run where id = ? and attempt = 1`, [id]);
  return row;
}

const seconds = (s: number) => new Date(Date.now() + s * 1_000);

test("a RUNNING run left out of 3 heartbeats sent after it started fails NODE_LOST, saying so, and is retried", async () => {
  const id = await insertRun("RUNNING", seconds(-10));
  await beat(heartbeat(seconds(-3)), heartbeat(seconds(-2)));
  assert.not.ok((await lose()).includes(id), "two heartbeats are not enough");
  await beat(heartbeat(seconds(-1)));
  assert.ok((await lose()).includes(id));
  const row = await runRow(id);
  assert.is(row.state, "FAILED");
  assert.is(row.failure_reason, "NODE_LOST");
  assert.match(row.message ?? "", /^node site-u no longer reports this run \(missing from its last 3 heartbeats, for \d+ s\)$/);
  const [retry] = await sql<{ state: string }>(`select state from run where id <> ? and task_id = (select task_id from run where id = ?)`, [id, id]);
  assert.is(retry?.state, "QUEUED", "attempt 2 is queued");
});

test("heartbeats the node sent before it started the run count nothing, however late they arrive", async () => {
  const id = await insertRun("RUNNING", seconds(-1));
  await beat(heartbeat(seconds(-4)), heartbeat(seconds(-3)), heartbeat(seconds(-2)));
  assert.is((await runRow(id)).unreported_heartbeats, 0);
  assert.not.ok((await lose()).includes(id));
});

test("a run the node lists as active, waiting or ended-but-unreported is held: listing it resets the count", async () => {
  const id = await insertRun("RUNNING", seconds(-10));
  await beat(heartbeat(seconds(-5)), heartbeat(seconds(-4)));
  assert.is((await runRow(id)).unreported_heartbeats, 2);
  await beat(heartbeat(seconds(-3), { unreported: [id] }));
  assert.is((await runRow(id)).unreported_heartbeats, 0, "its terminal report is still in the agent's outbox");
  await beat(heartbeat(seconds(-2), { waiting: [id] }), heartbeat(seconds(-1), { active: [id] }), heartbeat(seconds(0), { unreported: [id] }));
  assert.not.ok((await lose()).includes(id));
  assert.is((await runRow(id)).state, "RUNNING");
});

test("a heartbeat that does not list waiting and unreported runs (an older agent) counts nothing", async () => {
  const id = await insertRun("RUNNING", seconds(-10));
  await beat(heartbeat(seconds(-3), {}, false), heartbeat(seconds(-2), {}, false), heartbeat(seconds(-1), {}, false));
  assert.is((await runRow(id)).unreported_heartbeats, 0);
});

test("a terminal report that arrives before the sweep wins", async () => {
  const id = await insertRun("RUNNING", seconds(-10));
  await beat(heartbeat(seconds(-3)), heartbeat(seconds(-2)), heartbeat(seconds(-1)));
  const usage = { wallMs: 1, cpuUserMs: 0, cpuSystemMs: 0, peakRssBytes: 0, logBytes: 0, outputBytes: 0 };
  const report = { type: "run.state" as const, v: 1 as const, nodeId: NODE, runId: id, attempt: 1, state: "SUCCEEDED" as const, at: seconds(-1.5).toISOString(), exitCode: 0, usage };
  await orm.em.fork().transactional((em) => applyReportedStates(em, [report], new ChangeSet(), { maxResultBytes: 1_000 }));
  assert.not.ok((await lose()).includes(id));
  assert.is((await runRow(id)).state, "SUCCEEDED");
});

test("runs of an OFFLINE node are left to the silent-node sweep", async () => {
  const id = await insertRun("RUNNING", seconds(-10));
  await beat(heartbeat(seconds(-3)), heartbeat(seconds(-2)), heartbeat(seconds(-1)));
  await sql(`update node set connectivity = 'OFFLINE' where id = ?`, [NODE]);
  try {
    assert.not.ok((await lose()).includes(id));
  } finally {
    await sql(`update node set connectivity = 'ONLINE' where id = ?`, [NODE]);
  }
  assert.ok((await lose()).includes(id));
});

test("a QUEUED run left out is dispatched again only after its queue was seen empty and the node went on leaving it out", async () => {
  const id = await insertRun("QUEUED");
  const options = { minHeartbeats: 3, graceMs: 10_000 };
  const found = async (graceMs = options.graceMs) => (await findUnheldDispatches(orm.em.fork(), { minHeartbeats: 3, graceMs })).some((c) => c.runId === id);
  const settle = (queueEmpty: boolean) => orm.em.fork().transactional((em) => settleUnheldDispatches(em, [id], queueEmpty, options, new ChangeSet()));
  const leftOutLongAgo = async () => {
    await beat(heartbeat(seconds(-3)), heartbeat(seconds(-2)), heartbeat(seconds(-1)));
    await sql(`update run set unreported_since = now() - interval '30 seconds' where id = ?`, [id]);
  };
  await leftOutLongAgo();
  assert.not.ok(await found(120_000), "dispatched only a minute ago");
  assert.ok(await found());
  assert.not.ok((await lose()).includes(id), "a QUEUED run is never lost");

  await sql(`insert into outbox (message_id, exchange, routing_key, payload, created_at, attempts) values (gen_random_uuid(), 'fem.dispatch', 'site-u.run', ?, now(), 0)`, [JSON.stringify({ runId: id })]);
  assert.not.ok(await found(), "its dispatch still waits to be published");
  await sql(`delete from outbox`);

  assert.equal(await settle(false), [], "a queue that is not empty may hold it");
  assert.not.ok(await found(), "its count starts over");

  await leftOutLongAgo();
  assert.equal(await settle(true), [], "the first empty queue only marks it");
  assert.not.ok(await found());
  await beat(heartbeat(seconds(0), { waiting: [id] }));
  const [listed] = await sql<{ queue_empty_at: Date | null }>(`select queue_empty_at from run where id = ?`, [id]);
  assert.is(listed.queue_empty_at, null, "listed by the agent: it had moved from the queue to the agent");

  await leftOutLongAgo();
  assert.equal(await settle(true), []);
  await beat(heartbeat(seconds(1)), heartbeat(seconds(2)));
  assert.not.ok(await found(), "two heartbeats since the empty queue are not enough");
  await beat(heartbeat(seconds(3)));
  assert.ok(await found(), "no grace again: left out of 3 heartbeats since the queue was seen empty");
  const again = await settle(true);
  assert.equal(again.map((r) => [r.id, r.attempt, r.state]), [[id, 1, "QUEUED"]]);
  const [row] = await sql<{ unreported_heartbeats: number; message: string }>(`select unreported_heartbeats, message from run where id = ?`, [id]);
  assert.is(row.unreported_heartbeats, 0);
  assert.match(row.message, /^dispatched again: node site-u did not hold it \(missing from its heartbeats since its queue was seen empty \d+ s ago\)$/);
  const outbox = await sql<{ attempt: string }>(`select payload->>'attempt' as attempt from outbox where payload->>'runId' = ?`, [id]);
  assert.equal(outbox, [{ attempt: "1" }], "the same attempt, once");
  assert.equal(await settle(true), [], "a second sweep with the same view does nothing");
});

test.run();
