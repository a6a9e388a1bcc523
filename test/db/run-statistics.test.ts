/**
 * A submission that grows the run table by a large part has the run and task tables analysed as
 * soon as it commits (src/db/statistics.ts), so the API's reads by task are planned for the
 * table as it is, not as it was: a young database's statistics otherwise describe a table a
 * thousand times smaller until autovacuum gets to it. A small submission to a grown table does not.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { registerShellTool } from "../support/fixtures.js";
import { gqlOk } from "../support/graphql.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("run table statistics after large submissions");
const SUBMIT_ID = `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id } }`;
let env: TestEnv;
let tool: string;

test.before(async () => {
  env = await createTestEnv();
  // No agent: the runs wait in their node's queue, which is all this needs.
  await env.registerNodes(["stats-a"], 1_000);
  tool = await registerShellTool(env.orchestrator.url, "noop", "true", []);
});

test.after(async () => env?.dispose());

async function submit(tasks: number): Promise<void> {
  await gqlOk(env.orchestrator.url, SUBMIT_ID, { input: { tasks: Array.from({ length: tasks }, (_, i) => ({ key: `t${i}`, tool, nodes: ["stats-a"] })) } });
}

async function analysed(): Promise<{ manual: number; runs: number }> {
  const [row] = await env.sql<{ manual: number; runs: number }>(
    `select s.analyze_count::int as manual, greatest(c.reltuples, 0)::float8 as runs
     from pg_stat_user_tables s join pg_class c on c.oid = s.relid where s.relname = 'run'`,
  );
  return { manual: Number(row.manual), runs: Number(row.runs) };
}

test("1,200 runs into an empty table are analysed at once; 10 more into 1,200 are not", async () => {
  const before = await analysed();
  await submit(1_200);
  await waitUntil(async () => (await analysed()).manual > before.manual, 20_000, "an ANALYZE of run after the submission", 100);
  const after = await analysed();
  assert.ok(after.runs >= 1_200, `the statistics count the runs (${after.runs})`);
  const [task] = await env.sql<{ manual: number }>(`select analyze_count::int as manual from pg_stat_user_tables where relname = 'task'`);
  assert.ok(Number(task.manual) >= 1, "the task table too");

  await submit(10);
  // The statistics refresher is woken by the commit; give it the time it took above, and more.
  await sleep(1_500);
  assert.is((await analysed()).manual, after.manual, "10 runs are not a large part of 1,210");
});

test.run();
