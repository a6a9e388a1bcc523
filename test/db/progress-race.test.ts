/**
 * Two transactions ending runs of one task, or the last tasks of one workflow, at the same time
 * (two orchestrator instances ingesting, or a report beside a sweep): the second waits for the
 * first's locks and then reads what it committed, so the task and the workflow end. Before, the
 * states were read by the statement that took the task's lock, whose snapshot predated the first
 * transaction's commit (and the workflow was read without a lock): both saw the other's run still
 * RUNNING, and the task or the workflow stayed RUNNING for good (seen in the RabbitMQ cluster test).
 */
import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Orm } from "../../src/db/orm.js";
import { ChangeSet } from "../../src/kernel/index.js";
import { WIRE_VERSION } from "../../src/messaging/contracts.js";
import { applyReportedStates } from "../../src/runs/index.js";
import type { TestDatabase } from "../support/database.js";
import { createSeededDatabase, TOOL_ID, uuid } from "../support/seeded-database.js";
import { withTimeout } from "../support/wait.js";

const test = suite("task and workflow state when two transactions end their runs at once");

let db: TestDatabase;
let orm: Orm;
let next = 1;
const held: (() => void)[] = [];

test.before(async () => {
  ({ db, orm } = await createSeededDatabase({ nodes: 2, poolSize: 4 }));
});

test.after.each(() => {
  for (const release of held.splice(0)) release();
});

test.after(async () => {
  await orm?.close(true);
  await db?.drop();
});

/** A RUNNING workflow of `tasks` tasks, each with one RUNNING run per node in `nodes`; returns the workflow and each task's runs. */
async function runningWorkflow(tasks: number, nodes: string[]): Promise<{ workflow: string; runs: { id: string; node: string }[][] }> {
  const conn = orm.em.getConnection();
  const workflow = uuid(1, next++);
  await conn.execute(`insert into workflow (id, content_hash, submitted_at, state) values ('${workflow}', 'x', now(), 'RUNNING')`);
  const runs: { id: string; node: string }[][] = [];
  for (let t = 0; t < tasks; t++) {
    const task = uuid(2, next++);
    await conn.execute(
      `insert into task (id, workflow_id, key, tool_id, params, node_params, node_ids, depends_on_ids, created_at, retry, datasets, resources, inputs, state)
       values ('${task}', '${workflow}', 't${t}', '${TOOL_ID}', '{}', '{}', '${JSON.stringify(nodes)}', '[]', now(), '{"maxAttempts":1,"backoffSeconds":1,"retryOn":[]}', '[]', '{}', '[]', 'RUNNING')`,
    );
    const taskRuns = nodes.map((node) => ({ id: uuid(3, next++), node }));
    for (const run of taskRuns) {
      await conn.execute(
        `insert into run (id, task_id, workflow_id, node_id, attempt, argv, env, created_at, state, queued_at, dispatched_at, accepted_at, started_at)
         values ('${run.id}', '${task}', '${workflow}', '${run.node}', 1, '[]', '{}', now(), 'RUNNING', now(), now(), now(), now())`,
      );
    }
    runs.push(taskRuns);
  }
  return { workflow, runs };
}

const succeed = (em: EntityManager, run: { id: string; node: string }) =>
  applyReportedStates(
    em,
    [{ type: "run.state", v: WIRE_VERSION, nodeId: run.node, runId: run.id, attempt: 1, state: "SUCCEEDED", at: new Date().toISOString(), exitCode: 0 }],
    new ChangeSet(),
    { maxResultBytes: 65_536 },
  );

/** Ends `first` in a transaction held open, `second` in another meanwhile; then commits the first. */
async function endTogether(first: { id: string; node: string }, second: { id: string; node: string }): Promise<void> {
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  held.push(release);
  let ended = () => {};
  const hasEnded = new Promise<void>((resolve) => (ended = resolve));
  const one = orm.em.fork().transactional(async (em) => {
    await succeed(em, first);
    ended();
    await released;
  });
  await withTimeout(hasEnded, 10_000, "the first run's report");
  const two = orm.em.fork().transactional((em) => succeed(em, second));
  // Give the second transaction time to read (before) or to wait for the first's locks (now).
  await new Promise((resolve) => setTimeout(resolve, 300));
  release();
  await withTimeout(Promise.all([one, two]), 10_000, "both reports");
}

async function states(workflow: string): Promise<{ workflow: string; tasks: string[] }> {
  const conn = orm.em.getConnection();
  const [w] = await conn.execute<{ state: string }[]>(`select state from workflow where id = ?`, [workflow]);
  const tasks = await conn.execute<{ state: string }[]>(`select state from task where workflow_id = ? order by key`, [workflow]);
  return { workflow: w.state, tasks: tasks.map((t) => t.state) };
}

test("the last two runs of a task, on two nodes, ended at once: the task and the workflow succeed", async () => {
  const { workflow, runs } = await runningWorkflow(1, ["n-1", "n-2"]);
  await endTogether(runs[0][0], runs[0][1]);
  assert.equal(await states(workflow), { workflow: "SUCCEEDED", tasks: ["SUCCEEDED"] });
});

test("the last two tasks of a workflow ended at once: the workflow succeeds", async () => {
  const { workflow, runs } = await runningWorkflow(2, ["n-1"]);
  await endTogether(runs[0][0], runs[1][0]);
  assert.equal(await states(workflow), { workflow: "SUCCEEDED", tasks: ["SUCCEEDED", "SUCCEEDED"] });
});

test.run();
