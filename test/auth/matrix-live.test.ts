/**
 * The rest of "who may do what": every subscription over WebSocket as every persona, secrets shown
 * to ADMIN only, API tokens refused once revoked or expired, and the new mutations' bad input
 * answered precisely with nothing stored.
 */
import "reflect-metadata";
import { createClient, type Client } from "graphql-ws";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import WebSocket from "ws";
import { createApiToken } from "../../src/auth/index.js";
import { topics } from "../../src/live/topics.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { collect, expectError, gql, wsClient, wsOnce, type Collector } from "../support/graphql.js";
import { waitUntil } from "../support/wait.js";
import { createWorld, PERSONAS, post, RUN_SECRET, SUBJECTS, TOOL_SECRET, type Persona, type World } from "./matrix-world.js";

const test = suite("auth: subscriptions, secrets, tokens and bad input");
let env: TestEnv;
let world: World;
const clients: Client[] = [];
const collectors: Collector<unknown>[] = [];

test.before(async () => {
  env = await createTestEnv();
  world = await createWorld(env);
});

test.after(async () => {
  await Promise.all(collectors.map((c) => c.dispose()));
  await Promise.all(clients.map((c) => c.dispose()));
  await env?.dispose();
});

function subscribe(persona: Persona, query: string, variables: Record<string, unknown>, field: string): Collector<unknown> {
  const client = wsClient(world.url, { token: world.tokens[persona] });
  clients.push(client);
  const collector = collect(client, query, variables, field);
  collectors.push(collector);
  return collector;
}

/** Publishes until the subscription delivers (it listens only once its checks are done) or refuses. */
async function outcome(collector: Collector<unknown>, publish: () => void, what: string): Promise<string> {
  return waitUntil(
    () => {
      if (collector.errors.length > 0) {
        // A refused subscription answers GraphQL errors (one by one or as a list); a refused socket closes with a code.
        const first = [collector.errors[0]].flat()[0] as { code?: number; extensions?: { code?: string } };
        return first.extensions?.code ?? (first.code !== undefined ? `close ${first.code}` : JSON.stringify(first));
      }
      if (collector.items.length > 0) return "accepted";
      publish();
      return undefined;
    },
    10_000,
    what,
  );
}

type Live = "accepted" | "NOT_FOUND";
const alphaMembers = (operator: Live): Record<Exclude<Persona, "anonymous">, Live> => ({
  viewerOfAlpha: "accepted",
  researcherOfBeta: "NOT_FOUND",
  researcherOfAlpha: "accepted",
  ownerOfAlpha: "accepted",
  operatorOfA1: operator,
  admin: "accepted",
});
const line = (runId: string) => ({ runId, taskId: world.alpha.taskId, workflowId: world.alpha.workflowId, lines: [{ seq: 1, stream: "STDOUT", at: new Date().toISOString(), text: "hello" }] });

const SUBSCRIPTIONS: Record<string, { query: string; field: string; variables(): Record<string, unknown>; publish(): void; expect: Record<Exclude<Persona, "anonymous">, Live> }> = {
  runUpdated: {
    query: `subscription($id: ID!) { runUpdated(runId: $id) { id } }`,
    field: "runUpdated",
    variables: () => ({ id: world.alpha.runs["a-1"] }),
    publish: () => env.orchestrator.pubsub.publish(topics.run(world.alpha.runs["a-1"]), { id: world.alpha.runs["a-1"] }),
    expect: alphaMembers("accepted"),
  },
  runOutputsUpdated: {
    query: `subscription($id: ID!) { runOutputsUpdated(runId: $id) { id } }`,
    field: "runOutputsUpdated",
    variables: () => ({ id: world.alpha.runs["a-1"] }),
    publish: () => env.orchestrator.pubsub.publish(topics.runOutputs(world.alpha.runs["a-1"]), { runId: world.alpha.runs["a-1"] }),
    expect: alphaMembers("accepted"),
  },
  runLogs: {
    query: `subscription($id: ID!) { runLogs(runId: $id) { runId lines { seq } } }`,
    field: "runLogs",
    variables: () => ({ id: world.alpha.runs["a-1"] }),
    publish: () => env.orchestrator.pubsub.publish(topics.runLogs(world.alpha.runs["a-1"]), line(world.alpha.runs["a-1"])),
    expect: alphaMembers("accepted"),
  },
  workflowEvents: {
    query: `subscription($id: ID!) { workflowEvents(workflowId: $id) { workflowId kind } }`,
    field: "workflowEvents",
    variables: () => ({ id: world.alpha.workflowId }),
    publish: () =>
      env.orchestrator.pubsub.publish(topics.workflow(world.alpha.workflowId), { workflowId: world.alpha.workflowId, kind: "WORKFLOW", state: "QUEUED", taskId: null, runId: null, run: null, at: new Date() }),
    expect: alphaMembers("NOT_FOUND"),
  },
  taskLogs: {
    query: `subscription($id: ID!) { taskLogs(taskId: $id) { runId lines { seq } } }`,
    field: "taskLogs",
    variables: () => ({ id: world.alpha.taskId }),
    publish: () => env.orchestrator.pubsub.publish(topics.taskLogs(world.alpha.taskId), line(world.alpha.runs["a-1"])),
    expect: alphaMembers("NOT_FOUND"),
  },
  nodeUpdated: {
    query: `subscription { nodeUpdated(nodeId: "a-1") { id } }`,
    field: "nodeUpdated",
    variables: () => ({}),
    publish: () => env.orchestrator.pubsub.publish(topics.node("a-1"), { id: "a-1" }),
    expect: { ...alphaMembers("accepted"), researcherOfBeta: "NOT_FOUND" },
  },
};

for (const [name, sub] of Object.entries(SUBSCRIPTIONS)) {
  test(`${name} on alpha's object: no token closes the socket with 4403; ${Object.entries(sub.expect).filter(([, o]) => o === "accepted").map(([p]) => p).join(", ")} are accepted, the others NOT_FOUND`, async () => {
    const got: Record<string, string> = {};
    for (const persona of PERSONAS) got[persona] = await outcome(subscribe(persona, sub.query, sub.variables(), sub.field), sub.publish, `${name} as ${persona}`);
    assert.equal(got, { anonymous: "close 4403", ...sub.expect });
  });
}

test("nodeUpdated without nodeId delivers only the nodes the caller may see", async () => {
  const visible: Record<Exclude<Persona, "anonymous">, string[]> = {
    viewerOfAlpha: ["a-1", "a-2"],
    researcherOfBeta: ["b-1"],
    researcherOfAlpha: ["a-1", "a-2"],
    ownerOfAlpha: ["a-1", "a-2"],
    operatorOfA1: ["a-1"],
    admin: ["a-1", "a-2", "b-1"],
  };
  const publish = (id: string, name: string | null = null) => env.orchestrator.pubsub.publish(topics.allNodes, { id, name });
  for (const [persona, nodes] of Object.entries(visible) as [Persona, string[]][]) {
    const collector = subscribe(persona, `subscription { nodeUpdated { id name } }`, {}, "nodeUpdated");
    assert.is(await outcome(collector, () => publish(nodes[0]), `nodeUpdated as ${persona}`), "accepted");
    for (const id of ["a-1", "a-2", "b-1"]) publish(id, "probe");
    // One in-process topic delivers in order: once the end marker is here, every probe published before it is too.
    publish(nodes[0], "end");
    await collector.waitFor((items) => items.some((n) => (n as { name: string }).name === "end"), 5_000, `the end marker as ${persona}`);
    const seen = new Set(collector.items.filter((n) => (n as { name: string }).name === "probe").map((n) => (n as { id: string }).id));
    assert.equal([...seen].sort(), nodes, persona);
  }
});

test("workflowSubmitted: no token closes the socket with 4403; each caller receives the new workflows of the projects it reads, and only those", async () => {
  const query = `subscription($p: ID) { workflowSubmitted(project: $p) { id projectId } }`;
  assert.is(await outcome(subscribe("anonymous", query, {}, "workflowSubmitted"), () => undefined, "workflowSubmitted as anonymous"), "close 4403");
  // The projects whose new workflows each caller receives: those the workflows query lists to it.
  const reads: Record<string, ("alpha" | "beta")[]> = {
    viewerOfAlpha: ["alpha"],
    researcherOfBeta: ["beta"],
    researcherOfAlpha: ["alpha"],
    ownerOfAlpha: ["alpha"],
    // A node's operator reads the runs of its node, not the project's workflows.
    operatorOfA1: [],
    admin: ["alpha", "beta"],
    "admin, project: beta": ["beta"],
  };
  const collectors = new Map(
    Object.keys(reads).map((who) => {
      const persona = (who.startsWith("admin") ? "admin" : who) as Persona;
      return [who, subscribe(persona, query, who === "admin, project: beta" ? { p: world.beta.id } : {}, "workflowSubmitted")];
    }),
  );
  await env.orchestrator.pubsub.waitForSubscribers(topics.submittedWorkflows, collectors.size, 10_000);
  // alpha, beta, alpha: whoever has its last expected workflow has also received any earlier one it should not.
  const order = ["alpha", "beta", "alpha"] as const;
  const submitted: string[] = [];
  for (const project of order) submitted.push((await world.submit(project, project === "alpha" ? ["a-1"] : ["b-1"])).workflowId);
  for (const [who, projects] of Object.entries(reads)) {
    const expected = submitted.filter((_, i) => projects.includes(order[i]));
    const collector = collectors.get(who)!;
    if (expected.length > 0) await collector.waitFor((items) => items.length >= expected.length, 10_000, `${expected.length} workflows for ${who}`);
    else await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((collector.items as { id: string }[]).map((w) => w.id), expected, who);
    assert.equal(collector.errors, [], who);
  }
});

test("accountingUpdated counts only the ended runs each caller's accounting counts; a change with none of them delivers nothing", async () => {
  assert.is(await outcome(subscribe("anonymous", `subscription { accountingUpdated { finishedRuns } }`, {}, "accountingUpdated"), () => undefined, "accountingUpdated as anonymous"), "close 4403");
  const ended = (project: "alpha" | "beta", node: string) => ({ id: world[project].runs[node], nodeId: node, workflowId: world[project].workflowId });
  // First a change with beta's run only, then one with alpha's runs on a-1 and a-2 and beta's.
  const expected: Record<Exclude<Persona, "anonymous">, number[]> = {
    viewerOfAlpha: [2],
    researcherOfBeta: [1, 1],
    researcherOfAlpha: [2],
    ownerOfAlpha: [2],
    operatorOfA1: [1],
    admin: [1, 3],
  };
  const collectors = Object.fromEntries(Object.keys(expected).map((p) => [p, subscribe(p as Persona, `subscription { accountingUpdated { finishedRuns at } }`, {}, "accountingUpdated")]));
  await env.orchestrator.pubsub.waitForSubscribers(topics.finishedRuns, Object.keys(expected).length, 10_000);
  env.orchestrator.pubsub.publish(topics.finishedRuns, { runs: [ended("beta", "b-1")] });
  env.orchestrator.pubsub.publish(topics.finishedRuns, { runs: [ended("alpha", "a-1"), ended("alpha", "a-2"), ended("beta", "b-1")] });
  for (const [persona, counts] of Object.entries(expected)) {
    const collector = collectors[persona];
    await collector.waitFor((items) => items.length >= counts.length, 10_000, `${counts.length} updates for ${persona}`);
    // Events of one topic arrive in order: with the last expected one here, an unexpected earlier one would be too.
    assert.equal((collector.items as { finishedRuns: number }[]).map((u) => u.finishedRuns), counts, persona);
  }
});

test("env values of runs and tools are shown to ADMIN only; the others see ***", async () => {
  for (const persona of PERSONAS.filter((p) => p !== "anonymous")) {
    const tool = await post(world.url, { query: `query($id: ID!) { tool(id: $id) { env } }`, variables: { id: world.toolId } }, world.tokens[persona]);
    assert.equal(tool.data?.tool.env, { TOOL_SECRET: persona === "admin" ? TOOL_SECRET : "***" }, persona);
    const run = await post(world.url, { query: `query($id: ID!) { run(id: $id) { env } }`, variables: { id: world.alpha.runs["a-1"] } }, world.tokens[persona]);
    if (persona === "researcherOfBeta") continue;
    assert.is(run.data?.run.env.RUN_SECRET, persona === "admin" ? RUN_SECRET : "***", `${persona}: ${JSON.stringify(run)}`);
    assert.ok(!JSON.stringify(run).includes(TOOL_SECRET) || persona === "admin", persona);
  }
});

const ME = { query: `{ me { subject } }` };

test("a revoked token is refused at the next request; an expired one is refused", async () => {
  const { token, id } = await world.token(SUBJECTS.researcherOfAlpha);
  assert.is((await post(world.url, ME, token)).data?.me.subject, SUBJECTS.researcherOfAlpha);
  await post(world.url, { query: `mutation($id: ID!) { revokeApiToken(id: $id) { id } }`, variables: { id } }, token);
  const revoked = await post(world.url, ME, token);
  expectError(revoked, "UNAUTHENTICATED", /revoked/);
  assert.is(revoked.status, 401);

  const hourAgo = new Date(Date.now() - 3_600_000);
  const expired = await createApiToken(env.orchestrator.orm.em.fork(), { name: "old", ownerSubject: SUBJECTS.researcherOfAlpha, roles: [], expiresAt: new Date(hourAgo.getTime() + 60_000) }, hourAgo);
  const answer = await post(world.url, ME, expired.token);
  expectError(answer, "UNAUTHENTICATED", /expired/);
  assert.is(answer.status, 401);
});

test("a token revoked while its WebSocket is open: the next operation closes that socket with 4401", async () => {
  const { token, id } = await world.token(SUBJECTS.researcherOfAlpha);
  // Not lazy: one socket, one connection_init, for both operations and the subscription held open.
  const client = createClient({ url: world.url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, connectionParams: { authorization: `Bearer ${token}` } });
  clients.push(client);
  const held = collect(client, `subscription { nodeUpdated(nodeId: "a-1") { id } }`, {}, "nodeUpdated");
  collectors.push(held);
  assert.is((await wsOnce(client, `{ me { subject } }`)).data?.me.subject, SUBJECTS.researcherOfAlpha);
  await post(world.url, { query: `mutation($id: ID!) { revokeApiToken(id: $id) { id } }`, variables: { id } }, token);
  const closed = await wsOnce(client, `{ me { subject } }`).then(
    (answer) => ({ code: 0, reason: JSON.stringify(answer) }),
    (event: unknown) => ({ code: (event as { code?: number }).code ?? -1, reason: String((event as { reason?: string }).reason ?? event) }),
  );
  assert.is(closed.code, 4401, closed.reason);
  assert.match(closed.reason, /revoked/);
  // The socket's credential is dead: the subscription it held ended with it.
  await held.waitFor(() => held.errors.length > 0 || held.completed, 5_000, "the held subscription to end").catch(() => undefined);
  assert.ok(held.errors.length > 0 || held.completed, "the held subscription ended");
});

test("a RESEARCHER cannot create a token with ADMIN, and no token is stored", async () => {
  const count = async () => (await env.sql<{ n: number }>(`select count(*)::int as n from api_token where owner_subject = ?`, [SUBJECTS.researcherOfAlpha]))[0].n;
  const before = await count();
  const result = await post(world.url, { query: `mutation { createApiToken(input: { name: "escalate", roles: [ADMIN] }) { token } }` }, world.tokens.researcherOfAlpha);
  expectError(result, "FORBIDDEN", /ADMIN/);
  assert.is(await count(), before);
});

test("a user revokes only their own tokens: another's is NOT_FOUND and keeps working", async () => {
  const other = await world.token(SUBJECTS.ownerOfAlpha);
  const result = await post(world.url, { query: `mutation($id: ID!) { revokeApiToken(id: $id) { id } }`, variables: { id: other.id } }, world.tokens.researcherOfAlpha);
  expectError(result, "NOT_FOUND", /ApiToken/);
  assert.is((await post(world.url, ME, other.token)).data?.me.subject, SUBJECTS.ownerOfAlpha);
});

const count = async (table: string) => (await env.sql<{ n: number }>(`select count(*)::int as n from ${table}`))[0].n;
const BAD_INPUT: { name: string; query: string; variables: Record<string, unknown>; code: string; message: RegExp; table: string }[] = [
  { name: "addProjectMember to an unknown project", query: `mutation { addProjectMember(project: "gamma", subject: "x", role: VIEWER) { subject } }`, variables: {}, code: "NOT_FOUND", message: /gamma/, table: "project_member" },
  { name: "addProjectMember twice", query: `mutation($s: String!) { addProjectMember(project: "alpha", subject: $s, role: OWNER) { subject } }`, variables: { s: SUBJECTS.viewerOfAlpha }, code: "CONFLICT", message: /already a member/, table: "project_member" },
  { name: "addProjectMember with a bad role", query: `mutation($r: ProjectRole!) { addProjectMember(project: "alpha", subject: "x", role: $r) { subject } }`, variables: { r: "CHIEF" }, code: "BAD_USER_INPUT", message: /CHIEF/, table: "project_member" },
  { name: "addProjectMember with an oversize subject", query: `mutation($s: String!) { addProjectMember(project: "alpha", subject: $s, role: VIEWER) { subject } }`, variables: { s: "s".repeat(256) }, code: "BAD_USER_INPUT", message: /subject/, table: "project_member" },
  { name: "setProjectMemberRole of a non-member", query: `mutation { setProjectMemberRole(project: "alpha", subject: "nobody", role: OWNER) { role } }`, variables: {}, code: "NOT_FOUND", message: /nobody/, table: "project_member" },
  { name: "removeProjectMember of a non-member", query: `mutation { removeProjectMember(project: "alpha", subject: "nobody") { id } }`, variables: {}, code: "NOT_FOUND", message: /nobody/, table: "project_member" },
  { name: "createProject with a taken name", query: `mutation { createProject(input: { name: "alpha" }) { id } }`, variables: {}, code: "CONFLICT", message: /already exists/, table: "project" },
  { name: "createProject with a bad name", query: `mutation { createProject(input: { name: "Not A Slug" }) { id } }`, variables: {}, code: "BAD_USER_INPUT", message: /name/, table: "project" },
  { name: "addProjectNode of an unknown node", query: `mutation { addProjectNode(project: "alpha", nodeId: "z-9") { id } }`, variables: {}, code: "BAD_USER_INPUT", message: /unknown node "z-9"/, table: "project_node" },
  { name: "addProjectNode twice", query: `mutation { addProjectNode(project: "alpha", nodeId: "a-1") { id } }`, variables: {}, code: "CONFLICT", message: /already in project/, table: "project_node" },
  { name: "grantNodeOperator of an unknown node", query: `mutation { grantNodeOperator(nodeId: "z-9", subject: "x") { id } }`, variables: {}, code: "NOT_FOUND", message: /z-9/, table: "node_operator" },
  { name: "grantNodeOperator with an oversize subject", query: `mutation($s: String!) { grantNodeOperator(nodeId: "a-1", subject: $s) { id } }`, variables: { s: "s".repeat(256) }, code: "BAD_USER_INPUT", message: /subject/, table: "node_operator" },
  { name: "grantRole twice", query: `mutation($s: String!) { grantRole(subject: $s, role: NODE_OPERATOR) { roles } }`, variables: { s: SUBJECTS.operatorOfA1 }, code: "CONFLICT", message: /already holds/, table: "role_grant" },
  { name: "grantRole with a bad role", query: `mutation($r: GlobalRole!) { grantRole(subject: "x", role: $r) { roles } }`, variables: { r: "ROOT" }, code: "BAD_USER_INPUT", message: /ROOT/, table: "role_grant" },
  { name: "createApiToken with an oversize name", query: `mutation($n: String!) { createApiToken(input: { name: $n }) { token } }`, variables: { n: "n".repeat(101) }, code: "BAD_USER_INPUT", message: /name/, table: "api_token" },
];

for (const bad of BAD_INPUT) {
  test(`${bad.name} is ${bad.code} and stores nothing`, async () => {
    const before = await count(bad.table);
    expectError(await gql(world.url, bad.query, bad.variables), bad.code, bad.message);
    assert.is(await count(bad.table), before);
  });
}

test.run();
