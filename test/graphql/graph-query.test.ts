import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("graph queries for dashboards");
let env: TestEnv;
let counting = false;
let statements: string[] = [];
let lastStatementAt = 0;
const TASKS = 1_000;

test.before(async () => {
  // Background loops poll rarely here, so every statement counted belongs to the query.
  env = await createTestEnv({ heartbeatIntervalMs: 60_000, relayPollMs: 60_000, schedulerPollMs: 60_000, transferStallMs: 600_000 }, {
    onQuery: (message) => {
      if (!message.includes("[query]")) return;
      lastStatementAt = Date.now();
      if (counting) statements.push(message);
    },
  });
  await env.registerNodes(["site-a", "site-b"], 2);
});

test.after(async () => env?.dispose());

const GRAPH = `query($id: ID!) { workflow(id: $id) { id state tasks {
  id key state priority dependsOn { id key } tool { name version }
  runs { id state attempt node { id name connectivity } usage { wallMs } }
} } }`;

async function countStatements(id: string): Promise<{ count: number; tasks: number }> {
  // The scheduler's pass woken by the submit may still be running on a slow machine: wait until
  // the database has been quiet for a second, so only the query's own statements are counted.
  await waitUntil(() => Date.now() - lastStatementAt > 1_000, 60_000, "the scheduler's pass after the submit to end");
  statements = [];
  counting = true;
  const data = await gqlOk(env.orchestrator.url, GRAPH, { id });
  counting = false;
  return { count: statements.length, tasks: data.workflow.tasks.length };
}

test(`a ${TASKS}-task graph answers in the same bounded number of SQL statements as a 10-task one`, async () => {
  const tool = await registerNodeScriptTool(env.orchestrator.url, "noop", "0");
  const graph = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      key: `t${i}`,
      tool,
      nodes: i % 3 === 0 ? ["site-a", "site-b"] : ["site-a"],
      dependsOn: i === 0 ? [] : [`t${Math.floor((i - 1) / 2)}`],
    }));
  const small = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: graph(10) } });
  const large = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: graph(TASKS) } });
  await new Promise((r) => setTimeout(r, 1_000));
  const smallCount = await countStatements(small.submitWorkflow.id);
  const largeCount = await countStatements(large.submitWorkflow.id);
  assert.is(largeCount.tasks, TASKS);
  assert.ok(largeCount.count <= 8, `statements for ${TASKS} tasks: ${largeCount.count}\n${statements.join("\n")}`);
  assert.is(largeCount.count, smallCount.count, "independent of the graph's size");
  console.log(`    (${largeCount.count} SQL statements for ${TASKS} tasks)`);
});

test("workflows filter by state and time and page newest first", async () => {
  const all = await gqlOk(env.orchestrator.url, `{ workflows(first: 10) { nodes { id state submittedAt } pageInfo { hasNextPage } } }`);
  assert.is(all.workflows.nodes.length, 2);
  assert.ok(new Date(all.workflows.nodes[0].submittedAt) >= new Date(all.workflows.nodes[1].submittedAt));
  const page = await gqlOk(env.orchestrator.url, `{ workflows(first: 1) { nodes { id } pageInfo { hasNextPage endCursor } } }`);
  assert.ok(page.workflows.pageInfo.hasNextPage);
  const next = await gqlOk(env.orchestrator.url, `query($after: String) { workflows(first: 1, after: $after) { nodes { id } pageInfo { hasNextPage } } }`, { after: page.workflows.pageInfo.endCursor });
  assert.is.not(next.workflows.nodes[0].id, page.workflows.nodes[0].id);
  assert.not.ok(next.workflows.pageInfo.hasNextPage);
  const none = await gqlOk(env.orchestrator.url, `{ workflows(filter: { states: [SUCCEEDED] }) { nodes { id } } }`);
  assert.is(none.workflows.nodes.length, 0);
  const future = await gqlOk(env.orchestrator.url, `query($t: DateTime) { workflows(filter: { submittedAfter: $t }) { nodes { id } } }`, { t: new Date(Date.now() + 60_000).toISOString() });
  assert.is(future.workflows.nodes.length, 0);
});

test.run();
