/**
 * Walks the table of allowed run transitions on a real PostgreSQL: for every operation and every
 * run state, the operation moves a run in an allowed state where the table says, and refuses any
 * other state without changing the run or creating another attempt.
 */
import "reflect-metadata";
import { randomUUID } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { EntityManager } from "@mikro-orm/postgresql";
import { createOrm, migrate, type Orm } from "../../src/db/orm.js";
import { ChangeSet } from "../../src/kernel/change-set.js";
import { RunState } from "../../src/kernel/run-state.js";
import {
  adoptReportedRuns,
  applyReportedStates,
  cancelRuns,
  createRuns,
  dispatchRuns,
  isAllowed,
  loseRunsOfNode,
  refreshTasks,
  rerunTasks,
  settleInputWaiters,
  settleUnheldDispatches,
  TRANSITIONS,
  type RunOperation,
} from "../../src/runs/lifecycle/index.js";
import { scheduleRetries } from "../../src/runs/lifecycle/retries.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

const test = suite("the run lifecycle's transition table");
let db: TestDatabase;
let orm: Orm;

const ids = { workflow: randomUUID(), upstream: randomUUID(), task: randomUUID(), upstreamRun: randomUUID(), run: randomUUID(), tool: randomUUID() };
const NODE = "site-a";

async function sql<T = Record<string, unknown>>(em: EntityManager, text: string, params: unknown[] = []): Promise<T[]> {
  return (await em.getConnection().execute(text, params, "all")) as T[];
}

test.before(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ databaseUrl: db.url });
  await migrate(orm);
  const em = orm.em.fork();
  await sql(em, `insert into node (id, labels, capacity, launchers, reported_launchers, registered_resources, datasets, allowed_tools, admin_state, connectivity, credential_hash, created_at, updated_at)
                 values (?, '{}', 2, '["process"]', '[]', '{}', '[]', '[]', 'ACTIVE', 'ONLINE', 'x', now(), now())`, [NODE]);
  await sql(em, `insert into tool (id, name, version, executable, launcher, args, env, outputs, resources, created_at) values (?, 't', '1', '/bin/true', 'process', '[]', '{}', '[]', '{}', now())`, [ids.tool]);
  await sql(em, `insert into workflow (id, content_hash, state, submitted_at) values (?, 'h', 'RUNNING', now())`, [ids.workflow]);
  const retry = JSON.stringify({ maxAttempts: 3, backoffSeconds: 0, retryOn: ["NODE_LOST"] });
  await sql(em, `insert into task (id, workflow_id, key, tool_id, params, node_params, node_ids, datasets, inputs, depends_on_ids, priority, retry, resources, state, created_at)
                 values (?, ?, 'up', ?, '{}', '{}', ?, '[]', '[]', '[]', 0, ?, '{}', 'RUNNING', now())`, [ids.upstream, ids.workflow, ids.tool, JSON.stringify([NODE]), JSON.stringify({ maxAttempts: 1, backoffSeconds: 0, retryOn: [] })]);
  await sql(em, `insert into task (id, workflow_id, key, tool_id, params, node_params, node_ids, datasets, inputs, depends_on_ids, priority, retry, resources, state, created_at)
                 values (?, ?, 'down', ?, '{}', '{}', ?, '[]', '[]', ?, 0, ?, '{}', 'PENDING', now())`, [ids.task, ids.workflow, ids.tool, JSON.stringify([NODE]), JSON.stringify([ids.upstream]), retry]);
  await createRuns(
    em,
    [
      { id: ids.upstreamRun, taskId: ids.upstream, workflowId: ids.workflow, nodeId: NODE, argv: ["/bin/true"], env: {}, timeoutSeconds: null, waitsForUpstream: false },
      { id: ids.run, taskId: ids.task, workflowId: ids.workflow, nodeId: NODE, argv: ["/bin/true"], env: {}, timeoutSeconds: null, waitsForUpstream: true },
    ],
    new ChangeSet(),
  );
});

test.after(async () => {
  await orm?.close(true);
  await db?.drop();
});

/** Puts the fixture back: the run under test in `state`, its upstream run as the operation needs. */
async function reset(state: RunState, upstreamState: RunState, dispatched: boolean): Promise<void> {
  const em = orm.em.fork();
  await sql(em, `delete from run where attempt > 1`);
  await sql(em, `delete from outbox`);
  await sql(em, `delete from artifact`);
  await sql(em, `update task set inputs = '[]'::jsonb`);
  await sql(em, `update task set state = case when id = ? then 'RUNNING' else 'PENDING' end, finished_at = null`, [ids.upstream]);
  await sql(em, `update run set state = ?, failure_reason = null, finished_at = null, message = null, dispatched_at = null where id = ?`, [upstreamState, ids.upstreamRun]);
  await sql(
    em,
    `update run set state = ?, failure_reason = case when ? = 'FAILED' then 'NODE_LOST' end, finished_at = null, started_at = null, accepted_at = null,
       message = null, exit_code = null, wall_ms = null, dispatched_at = case when ? then now() - interval '1 minute' end where id = ?`,
    [state, state, dispatched, ids.run],
  );
}

const report = (state: "ACCEPTED" | "RUNNING" | "SUCCEEDED") => async (em: EntityManager, changes: ChangeSet) => {
  const at = new Date().toISOString();
  const usage = state === "SUCCEEDED" ? { exitCode: 0, usage: { wallMs: 1, cpuUserMs: 0, cpuSystemMs: 0, peakRssBytes: 0, logBytes: 0, outputBytes: 0 } } : {};
  await applyReportedStates(em, [{ type: "run.state", v: 1, nodeId: NODE, runId: ids.run, attempt: 1, state, at, ...usage }], changes, { maxResultBytes: 1_000 });
};

/** How each operation is invoked on the run under test, and what its upstream run must be. */
const cases: Record<Exclude<RunOperation, "create">, { upstream: RunState; dispatched: boolean; apply: (em: EntityManager, changes: ChangeSet) => Promise<unknown> }> = {
  release: { upstream: RunState.SUCCEEDED, dispatched: false, apply: (em, c) => refreshTasks(em, [ids.upstream], c) },
  skip: { upstream: RunState.FAILED, dispatched: false, apply: (em, c) => refreshTasks(em, [ids.upstream], c) },
  refuseInputs: {
    upstream: RunState.SUCCEEDED,
    dispatched: false,
    apply: async (em, c) => {
      // The run takes weights.bin from its upstream task, whose node's operator rejected it.
      await sql(em, `update task set state = 'SUCCEEDED', inputs = case when id = ? then '[{"from":"up","files":"weights.bin"}]'::jsonb else inputs end`, [ids.task]);
      await sql(em, `update task set state = 'PENDING' where id = ?`, [ids.task]);
      await sql(em, `insert into artifact (id, run_id, node_id, path, size_bytes, sha256, state, release_policy, created_at, checksum_failures, transfer_asks)
                     values (gen_random_uuid(), ?, ?, 'weights.bin', 1, repeat('a', 64), 'REJECTED', 'REVIEW', now(), 0, 0)`, [ids.upstreamRun, NODE]);
      await settleInputWaiters(em, [ids.upstreamRun], c);
    },
  },
  dispatch: { upstream: RunState.SUCCEEDED, dispatched: false, apply: (em, c) => dispatchRuns(em, [ids.run], c) },
  redispatch: {
    upstream: RunState.SUCCEEDED,
    dispatched: true,
    apply: async (em, c) => {
      // Its node's queue was seen empty a minute ago, its node has left it out of 3 heartbeats since, and the queue is empty still.
      await sql(em, `update run set unreported_heartbeats = 3, unreported_since = now() - interval '1 minute', queue_empty_at = now() - interval '1 minute' where id = ?`, [ids.run]);
      return settleUnheldDispatches(em, [ids.run], true, { minHeartbeats: 3, graceMs: 1_000 }, c);
    },
  },
  accept: { upstream: RunState.SUCCEEDED, dispatched: true, apply: report("ACCEPTED") },
  start: { upstream: RunState.SUCCEEDED, dispatched: true, apply: report("RUNNING") },
  finish: { upstream: RunState.SUCCEEDED, dispatched: true, apply: report("SUCCEEDED") },
  cancel: { upstream: RunState.SUCCEEDED, dispatched: true, apply: (em, c) => cancelRuns(em, [ids.run], "test", c) },
  lose: { upstream: RunState.SUCCEEDED, dispatched: true, apply: (em, c) => loseRunsOfNode(em, NODE, "test", c) },
  adopt: { upstream: RunState.SUCCEEDED, dispatched: true, apply: (em, c) => adoptReportedRuns(em, [{ runId: ids.run, attempt: 1, nodeId: NODE }], c) },
  retry: {
    upstream: RunState.SUCCEEDED,
    dispatched: true,
    apply: async (em, c) => scheduleRetries(em, await sql<never>(em, `select id, task_id as "taskId", state, failure_reason as "failureReason" from run where id = ?`, [ids.run]), c),
  },
  rerun: { upstream: RunState.SUCCEEDED, dispatched: true, apply: (em, c) => rerunTasks(em, ids.task, [ids.task], c) },
};

interface Observed {
  row: Record<string, unknown>;
  attempts: number;
}

/** The columns the lifecycle owns (a late terminal report may still fill in usage and exit code). */
const LIFECYCLE_COLUMNS = "state, attempt, node_id, failure_reason, message, queued_at, dispatched_at, accepted_at, started_at, finished_at";

async function observe(): Promise<Observed> {
  const em = orm.em.fork();
  const [row] = await sql(em, `select ${LIFECYCLE_COLUMNS} from run where id = ?`, [ids.run]);
  const [{ n }] = await sql<{ n: number }>(em, `select count(*)::int as n from run where task_id = ?`, [ids.task]);
  return { row, attempts: n };
}

test("every operation but create has a case here, and every state is covered", () => {
  assert.equal(Object.keys(cases).sort(), Object.keys(TRANSITIONS).filter((o) => o !== "create").sort());
  assert.is(Object.values(RunState).length, 8);
});

test("create makes attempt 1, PENDING when it waits for upstream tasks, else QUEUED", async () => {
  const rows = await sql<{ id: string; state: string; attempt: number; queued_at: Date | null }>(orm.em.fork(), `select id, state, attempt, queued_at from run where attempt = 1 order by id`);
  const byId = new Map(rows.map((r) => [r.id, r]));
  assert.ok(TRANSITIONS.create.to.includes(RunState.PENDING) && TRANSITIONS.create.to.includes(RunState.QUEUED));
  assert.is(byId.get(ids.upstreamRun)?.state, RunState.QUEUED);
  assert.ok(byId.get(ids.upstreamRun)?.queued_at);
  assert.is(byId.get(ids.run)?.state, RunState.PENDING);
  assert.is(byId.get(ids.run)?.queued_at, null);
});

for (const [operation, spec] of Object.entries(cases) as [Exclude<RunOperation, "create">, (typeof cases)[keyof typeof cases]][]) {
  test(`${operation}: applies from ${TRANSITIONS[operation].from.join(", ")} and nowhere else`, async () => {
    const wrong: string[] = [];
    for (const state of Object.values(RunState)) {
      await reset(state, spec.upstream, spec.dispatched);
      const before = await observe();
      await orm.em.fork().transactional((em) => spec.apply(em, new ChangeSet()));
      const after = await observe();
      const allowed = isAllowed(operation, state);
      const { to } = TRANSITIONS[operation];
      if (allowed) {
        if (operation === "retry" || operation === "rerun") {
          const [next] = await sql<{ state: RunState }>(orm.em.fork(), `select state from run where task_id = ? and attempt = 2`, [ids.task]);
          if (!next || !to.includes(next.state)) wrong.push(`${state}: expected a new attempt in ${to.join("/")}, got ${next?.state ?? "none"}`);
          if (after.row.state !== state) wrong.push(`${state}: the old attempt changed to ${String(after.row.state)}`);
        } else if (operation === "dispatch") {
          if (!after.row.dispatched_at) wrong.push(`${state}: not marked dispatched`);
        } else if (operation === "redispatch") {
          const [{ n }] = await sql<{ n: number }>(orm.em.fork(), `select count(*)::int as n from outbox where payload->>'runId' = ? and payload->>'attempt' = '1'`, [ids.run]);
          if (n !== 1) wrong.push(`${state}: expected the same attempt in the outbox once, found ${n}`);
          if (!(new Date(after.row.dispatched_at as string) > new Date(before.row.dispatched_at as string))) wrong.push(`${state}: dispatched_at not renewed`);
          if (after.row.state !== state) wrong.push(`${state}: changed to ${String(after.row.state)}`);
        } else if (!to.includes(after.row.state as RunState)) {
          wrong.push(`${state}: expected ${to.join("/")}, got ${String(after.row.state)}`);
        }
      } else {
        const same = JSON.stringify(before.row) === JSON.stringify(after.row) && before.attempts === after.attempts;
        if (!same) wrong.push(`${state}: refused state changed the run (${String(before.row.state)} → ${String(after.row.state)}, attempts ${before.attempts} → ${after.attempts})`);
      }
    }
    assert.equal(wrong, [], wrong.join("\n"));
  });
}

test.run();
