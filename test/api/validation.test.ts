import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { expectError, gql, gqlOk } from "../support/graphql.js";
import { REGISTER_TOOL, SUBMIT } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("API input validation");
let env: TestEnv;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a", "site-b"]);
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
    input: {
      name: "stats",
      version: "1.0",
      executable: "stats",
      args: [
        { id: "input", type: "STRING", required: true, position: 0 },
        { id: "count", type: "INT", prefix: "--count" },
      ],
    },
  });
});

test.after(async () => env?.dispose());

async function counts(): Promise<string> {
  const [row] = await env.sql<{ w: string; t: string; r: string; o: string }>(
    `select (select count(*) from workflow) w, (select count(*) from task) t, (select count(*) from run) r, (select count(*) from outbox) o`,
  );
  return JSON.stringify(row);
}

const task = (over: Record<string, unknown> = {}) => ({ key: "t1", tool: "stats@1.0", nodes: ["site-a"], params: { input: "x.csv" }, ...over });
const submit = (tasks: unknown[]) => gql(env.orchestrator.url, SUBMIT, { input: { tasks } });

test("refuses an unknown tool and stores nothing", async () => {
  const before = await counts();
  const ext = expectError(await submit([task({ tool: "nope@9" })]), "BAD_USER_INPUT", /unknown tool "nope@9"/);
  assert.is(ext.tool, "nope@9");
  assert.is(await counts(), before);
});

test("refuses an unknown node and a malformed node id", async () => {
  const before = await counts();
  expectError(await submit([task({ nodes: ["site-z"] })]), "BAD_USER_INPUT", /unknown node "site-z"/);
  expectError(await submit([task({ nodes: ["Not A Node!"] })]), "BAD_USER_INPUT", /not a node id/);
  assert.is(await counts(), before);
});

test("refuses missing, mistyped and unknown arguments, naming the argument", async () => {
  const before = await counts();
  let ext = expectError(await submit([task({ params: {} })]), "BAD_USER_INPUT", /missing required argument "input"/);
  assert.is(ext.argument, "input");
  ext = expectError(await submit([task({ params: { input: "x", count: "ten" } })]), "BAD_USER_INPUT", /"count" expects an integer/);
  assert.is(ext.argument, "count");
  ext = expectError(await submit([task({ params: { input: "x", colour: 1 } })]), "BAD_USER_INPUT", /unknown argument "colour"/);
  assert.is(ext.argument, "colour");
  // One bad per-node override refuses the whole workflow, even when another task was fine.
  expectError(
    await submit([task({ key: "ok" }), task({ key: "bad", nodes: ["site-a", "site-b"], nodeParams: [{ node: "site-b", params: { count: 1.5 } }] })]),
    "BAD_USER_INPUT",
    /"count" expects an integer/,
  );
  assert.is(await counts(), before);
});

test("refuses a graph with a cycle, naming it, and stores nothing", async () => {
  const before = await counts();
  const ext = expectError(
    await submit([task({ key: "a", dependsOn: ["b"] }), task({ key: "b", dependsOn: ["a"] })]),
    "BAD_USER_INPUT",
    /cycle: a → b → a/,
  );
  assert.equal(ext.cycle, ["a", "b", "a"]);
  expectError(await submit([task({ key: "a" }), task({ key: "a" })]), "BAD_USER_INPUT", /duplicate task key "a"/);
  assert.is(await counts(), before);
});

test("refuses a duplicate node id with CONFLICT and keeps the first", async () => {
  const result = await gql(env.orchestrator.url, `mutation { registerNode(input: { id: "site-a", capacity: 9 }) { node { id } } }`);
  expectError(result, "CONFLICT", /already registered/);
  const [row] = await env.sql<{ capacity: number }>(`select capacity from node where id = 'site-a'`);
  assert.is(row.capacity, 2);
});

test("refuses bad node registrations precisely", async () => {
  expectError(await gql(env.orchestrator.url, `mutation { registerNode(input: { id: "x" }) { node { id } } }`), "BAD_USER_INPUT", /not a node id/);
  expectError(await gql(env.orchestrator.url, `mutation { registerNode(input: { id: "ok-id", capacity: 0 }) { node { id } } }`), "BAD_USER_INPUT", /capacity/);
  expectError(await gql(env.orchestrator.url, `mutation { registerNode(input: { id: "ok-id", launchers: ["ssh"] }) { node { id } } }`), "BAD_USER_INPUT", /unknown launcher "ssh"/);
  const [row] = await env.sql<{ n: string }>(`select count(*) n from node where id = 'ok-id'`);
  assert.is(Number(row.n), 0);
});

test("refuses bad tools and duplicate tool versions", async () => {
  const input = { name: "t2", version: "1", executable: "x", args: [{ id: "n", type: "INT", default: "five" }] };
  expectError(await gql(env.orchestrator.url, REGISTER_TOOL, { input }), "BAD_USER_INPUT", /default of "n" expects an integer/);
  expectError(await gql(env.orchestrator.url, REGISTER_TOOL, { input: { ...input, args: [], resultFile: "../etc/passwd" } }), "BAD_USER_INPUT", /resultFile/);
  expectError(await gql(env.orchestrator.url, REGISTER_TOOL, { input: { name: "stats", version: "1.0", executable: "y" } }), "CONFLICT", /already exists/);
});

test("answers NOT_FOUND for a missing entity and BAD_USER_INPUT for a malformed id", async () => {
  expectError(await gql(env.orchestrator.url, `{ workflow(id: "00000000-0000-4000-8000-000000000000") { id } }`), "NOT_FOUND", /Workflow/);
  expectError(await gql(env.orchestrator.url, `{ workflow(id: "42") { id } }`), "BAD_USER_INPUT", /not a valid id/);
  expectError(await gql(env.orchestrator.url, `{ run(id: "nope") { id } }`), "BAD_USER_INPUT", /not a valid id/);
  expectError(await gql(env.orchestrator.url, `{ node(id: "no-such-node") { id } }`), "NOT_FOUND", /Node "no-such-node"/);
  expectError(await gql(env.orchestrator.url, `{ nodes(after: "garbage!") { nodes { id } } }`), "BAD_USER_INPUT", /cursor/);
  expectError(await gql(env.orchestrator.url, `{ nope }`), "BAD_USER_INPUT", /Cannot query field "nope"/);
});

test("pages nodes with Relay cursors", async () => {
  const first = await gqlOk(env.orchestrator.url, `{ nodes(first: 1) { nodes { id } pageInfo { hasNextPage endCursor } } }`);
  assert.equal(first.nodes.nodes, [{ id: "site-a" }]);
  assert.ok(first.nodes.pageInfo.hasNextPage);
  const second = await gqlOk(env.orchestrator.url, `query($after: String) { nodes(first: 5, after: $after) { nodes { id } pageInfo { hasNextPage } } }`, {
    after: first.nodes.pageInfo.endCursor,
  });
  assert.equal(second.nodes.nodes, [{ id: "site-b" }]);
  assert.not.ok(second.nodes.pageInfo.hasNextPage);
});

test("accepts a valid workflow with per-node arguments and builds each run's argv", async () => {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: { tasks: [task({ nodes: ["site-a", "site-b"], params: { input: "all.csv", count: 2 }, nodeParams: [{ node: "site-b", params: { input: "b.csv" } }] })] },
  });
  const runs = data.submitWorkflow.tasks[0].runs as { node: { id: string }; argv: string[]; state: string }[];
  const byNode = Object.fromEntries(runs.map((r) => [r.node.id, r.argv]));
  assert.equal(byNode["site-a"], ["stats", "all.csv", "--count", "2"]);
  assert.equal(byNode["site-b"], ["stats", "b.csv", "--count", "2"]);
  assert.ok(runs.every((r) => r.state === "QUEUED"));
  await waitUntil(
    async () => Number((await env.sql<{ n: string }>(`select count(*) n from outbox where payload->>'type' = 'run.dispatch'`))[0].n) === 2,
    10_000,
    "the scheduler to dispatch both runs",
  );
});

test.run();
