import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Client } from "graphql-ws";
import { createApiToken } from "../../src/auth/index.js";
import { GlobalRole } from "../../src/kernel/index.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { expectError, gql, gqlFrom, gqlOk, wsClient, wsClientFrom, wsOnce, type GqlResult } from "../support/graphql.js";
import { REGISTER_TOOL, SUBMIT } from "../support/fixtures.js";

function expectTooComplex(result: GqlResult, limit: string): void {
  const ext = expectError(result, "QUERY_TOO_COMPLEX", /at most|tokens/);
  assert.is(ext.limit, limit, JSON.stringify(result.errors));
  assert.type(ext.max, "number");
}

/** `tasks { workflow { … id } }`, `levels` pairs deep. */
const nested = (levels: number): string => (levels === 0 ? "id" : `tasks { workflow { ${nested(levels - 1)} } }`);

// Each is over the default limits (depth 12, aliases 30, cost 25,000, tokens 5,000) and nothing else.
const DEEP_QUERY = `query($id: ID!) { workflow(id: $id) { ${nested(6)} } }`;
const DEEP_SUBSCRIPTION = `subscription($id: ID!) { runUpdated(runId: $id) { task { workflow { ${nested(5)} } } } }`;
const ALIAS_QUERY = `{ ${Array.from({ length: 31 }, (_, i) => `a${i}: tools(first: 1) { nodes { id } }`).join(" ")} }`;
const ALIAS_SUBSCRIPTION = `subscription { nodeUpdated { ${Array.from({ length: 31 }, (_, i) => `a${i}: id`).join(" ")} } }`;
const COSTLY_QUERY = `query($n: Int) { workflows(first: $n) { nodes { tasks { runs { id } } } } }`;
const COSTLY_SUBSCRIPTION = `subscription($id: ID!) { runUpdated(runId: $id) { task { workflow { tasks { runs { logs(first: 10000) { edges { node { text } } } } } } } } }`;
const TOKEN_QUERY = `{ tools { nodes { ${"id ".repeat(5_000)} } } }`;
const TOKEN_SUBSCRIPTION = `subscription { nodeUpdated { ${"id ".repeat(5_000)} } }`;

const test = suite("API cost limits, page sizes and input limits");
let env: TestEnv;
let client: Client;
let runId: string;
let taskId: string;

test.before(async () => {
  env = await createTestEnv({ maxRunsPerWorkflow: 10 });
  client = wsClient(env.orchestrator.wsUrl);
  await env.registerNodes(["site-a", "site-b"]);
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
    input: {
      name: "slice",
      version: "1",
      executable: "slice",
      args: [
        { id: "file", type: "STRING", position: 0 },
        { id: "range", type: "STRING", prefix: "--range", allowDash: true },
      ],
    },
  });
  const submitted = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "slice@1", nodes: ["site-a"], params: { file: "a.csv" } }] } });
  taskId = submitted.submitWorkflow.tasks[0].id;
  runId = submitted.submitWorkflow.tasks[0].runs[0].id;
});

test.after(async () => {
  await client?.dispose();
  await env?.dispose();
});

async function counts(): Promise<string> {
  const [row] = await env.sql(
    `select (select count(*) from workflow) w, (select count(*) from task) t, (select count(*) from run) r, (select count(*) from node) n, (select count(*) from tool) tl`,
  );
  return JSON.stringify(row);
}

test("refuses a deep query, an alias flood, an over-cost query and an over-token query over HTTP, before anything runs", async () => {
  const url = env.orchestrator.url;
  const id = (await gqlOk(url, `{ workflows(first: 1) { nodes { id } } }`)).workflows.nodes[0].id;
  expectTooComplex(await gql(url, DEEP_QUERY, { id }), "depth");
  expectTooComplex(await gql(url, ALIAS_QUERY), "aliases");
  expectTooComplex(await gql(url, COSTLY_QUERY, { n: 500 }), "cost");
  expectTooComplex(await gql(url, TOKEN_QUERY), "tokens");

  // Mutations over the limits store nothing: they are refused before execution, not after.
  const before = await counts();
  const tasks = [{ key: "m", tool: "slice@1", nodes: ["site-a"], params: { file: "m.csv" } }];
  const submit = (selection: string) => gql(url, `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { ${selection} } }`, { input: { tasks } });
  expectTooComplex(await submit(nested(6)), "depth");
  expectTooComplex(await submit(`tasks { runs { logs(first: 10000) { edges { node { text } } } } }`), "cost");
  expectTooComplex(await submit(`id ${"state ".repeat(5_000)}`), "tokens");
  const aliases = Array.from({ length: 31 }, (_, i) => `n${i}: registerNode(input: { id: "alias-${i}" }) { node { id } }`).join(" ");
  expectTooComplex(await gql(url, `mutation { ${aliases} }`), "aliases");
  assert.is(await counts(), before);
});

test("says which limit, its maximum and what the operation had", async () => {
  const result = await gql(env.orchestrator.url, COSTLY_QUERY, { n: 500 });
  const ext = expectError(result, "QUERY_TOO_COMPLEX", /estimated cost is 51001 \(at most 25000\)/);
  assert.equal(ext, { code: "QUERY_TOO_COMPLEX", limit: "cost", max: 25_000, actual: 51_001 });
  const depth = expectError(await gql(env.orchestrator.url, DEEP_QUERY, { id: runId }), "QUERY_TOO_COMPLEX", /nests fields 14 deep \(at most 12\)/);
  assert.is(depth.actual, 14);
});

test("estimates cost with the request's variables", async () => {
  expectTooComplex(await gql(env.orchestrator.url, COSTLY_QUERY, { n: 500 }), "cost");
  const small = await gqlOk(env.orchestrator.url, COSTLY_QUERY, { n: 10 });
  assert.ok(small.workflows.nodes.length >= 1);
});

test("refuses the same over WebSocket, for a subscription and for a query", async () => {
  for (const [query, variables, limit] of [
    [DEEP_SUBSCRIPTION, { id: runId }, "depth"],
    [ALIAS_SUBSCRIPTION, {}, "aliases"],
    [COSTLY_SUBSCRIPTION, { id: runId }, "cost"],
    [TOKEN_SUBSCRIPTION, {}, "tokens"],
    [DEEP_QUERY, { id: runId }, "depth"],
    [ALIAS_QUERY, {}, "aliases"],
    [COSTLY_QUERY, { n: 500 }, "cost"],
    [TOKEN_QUERY, {}, "tokens"],
  ] as const) {
    expectTooComplex(await wsOnce(client, query, variables), limit);
  }
  // What is within the limits still works on the socket.
  const ok = await wsOnce(client, COSTLY_QUERY, { n: 10 });
  assert.not.ok(ok.errors, JSON.stringify(ok.errors));
});

test("refuses a page larger than the maximum for workflows, Run.logs, runLogs and Task.runs, naming first", async () => {
  const url = env.orchestrator.url;
  let ext = expectError(await gql(url, `{ workflows(first: 501) { nodes { id } } }`), "BAD_USER_INPUT", /^first: must be from 1 to 500/);
  assert.is(ext.max, 500);
  ext = expectError(await gql(url, `query($id: ID!) { run(id: $id) { logs(first: 10001) { nodes { seq } } } }`, { id: runId }), "BAD_USER_INPUT", /^first: must be from 1 to 10000/);
  assert.is(ext.max, 10_000);
  expectError(await gql(url, `query($id: ID!) { runLogs(runId: $id, first: 10001) { nodes { seq } } }`, { id: runId }), "BAD_USER_INPUT", /^first: must be from 1 to 10000/);
  expectError(await gql(url, `query($id: ID!) { task(id: $id) { runs(first: 10001) { id } } }`, { id: taskId }), "BAD_USER_INPUT", /^first: must be from 1 to 10000/);
  // At the maximum they answer.
  const ok = await gqlOk(url, `query($id: ID!) { task(id: $id) { runs(first: 10000) { id } } workflows(first: 500) { nodes { id } } run(id: "${runId}") { logs(first: 10000) { nodes { seq } } } }`, { id: taskId });
  assert.is(ok.task.runs.length, 1);
});

const task = (over: Record<string, unknown> = {}) => ({ key: "t", tool: "slice@1", nodes: ["site-a"], params: { file: "a.csv" }, ...over });
const submit = (input: Record<string, unknown>) => gql(env.orchestrator.url, SUBMIT, { input });

test("refuses oversize strings, naming the field, and stores nothing", async () => {
  const before = await counts();
  expectError(await submit({ name: "n".repeat(201), tasks: [task()] }), "BAD_USER_INPUT", /^name: at most 200 characters \(got 201\)/);
  expectError(await submit({ idempotencyKey: "k".repeat(201), tasks: [task()] }), "BAD_USER_INPUT", /^idempotencyKey: at most 200 characters/);
  const ext = expectError(await submit({ tasks: [task({ params: { file: "f".repeat(4_097) } })] }), "BAD_USER_INPUT", /^tasks\[0\]\.params\.file: at most 4096 characters/);
  assert.is(ext.argument, "file");
  expectError(
    await submit({ tasks: [task({ nodes: ["site-a", "site-b"], nodeParams: [{ node: "site-b", params: { file: "f".repeat(4_097) } }] })] }),
    "BAD_USER_INPUT",
    /^tasks\[0\]\.params\.file: at most 4096 characters/,
  );
  expectError(await submit({ tasks: [task({ key: "k".repeat(101) })] }), "BAD_USER_INPUT", /tasks\[0\]\.key/);
  expectError(await submit({ tasks: [task({ tool: `${"x".repeat(200)}@1` })] }), "BAD_USER_INPUT", /^tasks\[0\]\.tool: at most 200 characters/);
  const label = await gql(env.orchestrator.url, `mutation { registerNode(input: { id: "site-c", labels: { zone: "${"z".repeat(257)}" } }) { node { id } } }`);
  expectError(label, "BAD_USER_INPUT", /^labels\.zone: label values are strings of at most 256 characters/);
  const manyLabels = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`l${i}`, "v"]));
  expectError(await gql(env.orchestrator.url, `mutation($l: JSONObject) { registerNode(input: { id: "site-c", labels: $l }) { node { id } } }`, { l: manyLabels }), "BAD_USER_INPUT", /^labels: at most 64 labels/);
  expectError(await gql(env.orchestrator.url, `mutation { registerNode(input: { id: "site-c", name: "${"n".repeat(201)}" }) { node { id } } }`), "BAD_USER_INPUT", /^name: at most 200/);
  const tool = { name: "big", version: "1", executable: "big" };
  expectError(await gql(env.orchestrator.url, REGISTER_TOOL, { input: { ...tool, env: { HOME: "h".repeat(4_097) } } }), "BAD_USER_INPUT", /^env\.HOME: at most 4096 characters/);
  expectError(await gql(env.orchestrator.url, REGISTER_TOOL, { input: { ...tool, image: "i".repeat(501) } }), "BAD_USER_INPUT", /^image: at most 500 characters/);
  expectError(
    await gql(env.orchestrator.url, REGISTER_TOOL, { input: { ...tool, args: [{ id: "s", type: "STRING", default: "d".repeat(4_097) }] } }),
    "BAD_USER_INPUT",
    /^args\[0\]\.default: at most 4096 characters/,
  );
  assert.is(await counts(), before);
});

test("refuses a workflow over the runs-per-workflow limit (tasks × target nodes) and stores nothing", async () => {
  const before = await counts();
  const tasks = Array.from({ length: 6 }, (_, i) => task({ key: `t${i}`, nodes: ["site-a", "site-b"] }));
  const ext = expectError(await submit({ tasks }), "BAD_USER_INPUT", /^tasks: the workflow would create 12 runs \(tasks × target nodes\); at most 10/);
  assert.is(ext.runs, 12);
  assert.is(await counts(), before);
  // At the limit it is accepted.
  await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: tasks.slice(0, 5) } });
});

test("refuses a STRING value starting with '-' unless the argument allows it; an allowDash value is passed as it is", async () => {
  const before = await counts();
  let ext = expectError(await submit({ tasks: [task({ params: { file: "-rf" } })] }), "BAD_USER_INPUT", /^tasks\[0\]\.params\.file: argument "file" may not start with '-'/);
  assert.is(ext.argument, "file");
  ext = expectError(
    await submit({ tasks: [task({ nodes: ["site-a", "site-b"], nodeParams: [{ node: "site-b", params: { file: "--output=/etc/passwd" } }] })] }),
    "BAD_USER_INPUT",
    /may not start with '-'/,
  );
  assert.is(await counts(), before);
  const accepted = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [task({ params: { file: "a-b.csv", range: "-5:5" } })] } });
  assert.equal(accepted.submitWorkflow.tasks[0].runs[0].argv, ["slice", "a-b.csv", "--range", "-5:5"]);
  const tool = await gqlOk(env.orchestrator.url, `{ tool(id: "slice@1") { args { id allowDash } } }`);
  assert.equal(tool.tool.args, [{ id: "file", allowDash: false }, { id: "range", allowDash: true }]);
});

test.run();

const rate = suite("the mutation rate limit");
let rateEnv: TestEnv;
const clients: Client[] = [];

/** ADMIN tokens of three subjects: the limit is per signed-in caller. */
const tokens: Record<"a" | "b" | "c", string> = { a: "", b: "", c: "" };

rate.before(async () => {
  rateEnv = await createTestEnv({ mutationsPerMinute: 3 });
  for (const key of Object.keys(tokens) as (keyof typeof tokens)[]) {
    tokens[key] = (await createApiToken(rateEnv.orchestrator.orm.em.fork(), { name: `rate ${key}`, ownerSubject: `rate-${key}`, roles: [GlobalRole.ADMIN] })).token;
  }
});

rate.after(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await rateEnv?.dispose();
});

const register = (id: string) => `mutation { registerNode(input: { id: "${id}" }) { node { id } } }`;

rate("answers RATE_LIMITED with retry-after past a signed-in caller's limit, stores nothing, and leaves other callers and queries alone", async () => {
  const url = rateEnv.orchestrator.url;
  for (const id of ["rate-1", "rate-2", "rate-3"]) assert.not.ok((await gqlFrom(url, "127.0.0.1", register(id), {}, tokens.a)).errors);
  const refused = await gqlFrom(url, "127.0.0.1", register("rate-4"), {}, tokens.a);
  const ext = expectError(refused, "RATE_LIMITED", /too many mutations from this caller; retry after \d+ s/);
  assert.ok(typeof ext.retryAfterSeconds === "number" && ext.retryAfterSeconds >= 1 && ext.retryAfterSeconds <= 20, JSON.stringify(ext));
  assert.is(refused.status, 429);
  assert.is(refused.retryAfter, String(ext.retryAfterSeconds));
  const [row] = await rateEnv.sql<{ n: string }>(`select count(*) n from node where id = 'rate-4'`);
  assert.is(Number(row.n), 0);

  // The same caller over WebSocket is the same caller; queries are not counted.
  const same = wsClientFrom(rateEnv.orchestrator.wsUrl, "127.0.0.1", tokens.a);
  clients.push(same);
  expectError(await wsOnce(same, register("rate-5")), "RATE_LIMITED", /too many mutations/);
  const nodes = await gqlOk(url, `{ nodes { nodes { id } } }`, {}, { token: tokens.a });
  assert.is(nodes.nodes.nodes.length, 3);

  // Another caller has its own budget, on either transport.
  const other = await gqlFrom(url, "127.0.0.1", register("other-1"), {}, tokens.b);
  assert.not.ok(other.errors, JSON.stringify(other.errors));
  const otherWs = wsClientFrom(rateEnv.orchestrator.wsUrl, "127.0.0.1", tokens.b);
  clients.push(otherWs);
  const viaSocket = await wsOnce(otherWs, register("other-2"));
  assert.not.ok(viaSocket.errors, JSON.stringify(viaSocket.errors));
});

rate("counts every root field of a mutation", async () => {
  const url = rateEnv.orchestrator.url;
  const result = await gqlFrom(url, "127.0.0.1", `mutation { a: registerNode(input: { id: "multi-1" }) { node { id } } b: registerNode(input: { id: "multi-2" }) { node { id } } }`, {}, tokens.c);
  assert.not.ok(result.errors, JSON.stringify(result.errors));
  const twoMore = await gqlFrom(url, "127.0.0.1", `mutation { a: registerNode(input: { id: "multi-3" }) { node { id } } b: registerNode(input: { id: "multi-4" }) { node { id } } }`, {}, tokens.c);
  expectError(twoMore, "RATE_LIMITED", /too many mutations/);
});

rate.run();
