/**
 * Two orchestrators lost terminal states: while one committed a run's RUNNING, the other's
 * SUCCEEDED waited on the row lock and then matched nothing, because its "state in (subquery)"
 * condition did not survive PostgreSQL's re-check of the newer row version. The run stayed RUNNING.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ChangeSet } from "../../src/kernel/change-set.js";
import { applyReportedStates } from "../../src/runs/lifecycle/reports.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { withTimeout } from "../support/wait.js";

const test = suite("a terminal report racing a start report");
let env: TestEnv;

test.before(async () => {
  env = await createTestEnv({ schedulerPollMs: 60_000 });
  await env.registerNodes(["site-a"]);
});

test.after(async () => env?.dispose());

test("the terminal state wins whichever transaction holds the row first", async () => {
  const tool = await registerNodeScriptTool(env.orchestrator.url, "t", "0");
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["site-a"] }] } });
  const runId: string = data.submitWorkflow.tasks[0].runs[0].id;
  const at = new Date().toISOString();
  const base = { v: 1 as const, nodeId: "site-a", runId, attempt: 1 };
  const orm = env.orchestrator.orm;
  let releaseFirst!: () => void;
  const held = new Promise<void>((resolve) => (releaseFirst = resolve));
  let firstApplied!: () => void;
  const firstInside = new Promise<void>((resolve) => (firstApplied = resolve));
  const first = orm.em.fork().transactional(async (em) => {
    await applyReportedStates(em, [{ ...base, type: "run.state", state: "RUNNING", at }], new ChangeSet(), { maxResultBytes: 1_000 });
    firstApplied();
    await held;
  });
  await firstInside;
  const second = orm.em.fork().transactional((em) =>
    applyReportedStates(em, [{ ...base, type: "run.state", state: "SUCCEEDED", at, exitCode: 0, usage: { wallMs: 1, cpuUserMs: 0, cpuSystemMs: 0, peakRssBytes: 0, logBytes: 0, outputBytes: 0 } }], new ChangeSet(), { maxResultBytes: 1_000 }),
  );
  await new Promise((r) => setTimeout(r, 300));
  releaseFirst();
  await withTimeout(first, 10_000, "the first transaction");
  const changed = await withTimeout(second, 10_000, "the second transaction");
  assert.is(changed.length, 1, "the terminal report applied after waiting for the row");
  const [row] = await env.sql<{ state: string; started_at: Date | null }>(`select state, started_at from run where id = ?`, [runId]);
  assert.is(row.state, "SUCCEEDED");
  assert.ok(row.started_at);
});

test.run();
