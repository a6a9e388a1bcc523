/**
 * Deny by default, proved: every root field has a rule, and every Query and Mutation field is called
 * over HTTP by every persona, with who is allowed and who is refused (and how) stated in one table.
 * No answer may carry an id of a project its caller cannot see.
 */
import "reflect-metadata";
import { isObjectType } from "graphql";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { RULES } from "../../src/graphql/authorization.js";
import { createSchema } from "../../src/graphql/schema.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { createWorld, PERSONAS, post, SUBJECTS, type Operation, type Persona, type World } from "./matrix-world.js";

type Outcome = "ok" | "FORBIDDEN" | "NOT_FOUND";
type Signed = Exclude<Persona, "anonymous">;
interface Case {
  expect: Record<Signed, Outcome>;
  /** Builds the operation for one persona; state-changing cases make their own throwaway target. */
  op(world: World, persona: Persona): Promise<Operation> | Operation;
}

const all = (outcome: Outcome): Record<Signed, Outcome> => ({ viewerOfAlpha: outcome, researcherOfBeta: outcome, researcherOfAlpha: outcome, ownerOfAlpha: outcome, operatorOfA1: outcome, admin: outcome });
const anySignedIn = all("ok");
const adminOnly: Record<Signed, Outcome> = { ...all("FORBIDDEN"), admin: "ok" };
/** Alpha's own objects: its members read them; the others do not know they exist. */
const alphaReaders: Record<Signed, Outcome> = { viewerOfAlpha: "ok", researcherOfBeta: "NOT_FOUND", researcherOfAlpha: "ok", ownerOfAlpha: "ok", operatorOfA1: "NOT_FOUND", admin: "ok" };
const alphaWriters: Record<Signed, Outcome> = { ...alphaReaders, viewerOfAlpha: "FORBIDDEN" };
const alphaOwners: Record<Signed, Outcome> = { ...alphaWriters, researcherOfAlpha: "FORBIDDEN" };
/** A run on a-1: alpha's members and a-1's operator. */
const runOnA1Readers: Record<Signed, Outcome> = { ...alphaReaders, operatorOfA1: "ok" };

const adminSubmit = async (w: World) => w.submit("alpha", ["a-1"]);
const adminCancelled = async (w: World) => {
  const workflow = await adminSubmit(w);
  await gqlOk(w.url, `mutation($id: ID!) { cancelWorkflow(id: $id) { id } }`, { id: workflow.workflowId });
  return workflow;
};
const addMember = async (w: World) => {
  const subject = w.fresh("member");
  await gqlOk(w.url, `mutation($s: String!) { addProjectMember(project: "alpha", subject: $s, role: VIEWER) { subject } }`, { s: subject });
  return subject;
};
const registerNode = async (w: World) => {
  const id = w.fresh("spare");
  await gqlOk(w.url, `mutation($id: ID!) { registerNode(input: { id: $id }) { node { id } } }`, { id });
  return id;
};

const CASES: Record<string, Case> = {
  "Query.me": { expect: anySignedIn, op: () => ({ query: `{ me { subject roles memberships { projectId role } operatedNodes } }` }) },
  "Query.orchestratorPublicKey": { expect: anySignedIn, op: () => ({ query: `{ orchestratorPublicKey }` }) },
  "Query.node": { expect: alphaReaders, op: () => ({ query: `{ node(id: "a-2") { id } }` }) },
  "Query.nodes": { expect: anySignedIn, op: () => ({ query: `{ nodes { nodes { id } } }` }) },
  "Query.tool": { expect: anySignedIn, op: (w) => ({ query: `query($id: ID!) { tool(id: $id) { id ref env } }`, variables: { id: w.toolId } }) },
  "Query.tools": { expect: anySignedIn, op: () => ({ query: `{ tools { nodes { id ref env } } }` }) },
  "Query.workflow": {
    expect: alphaReaders,
    op: (w) => ({ query: `query($id: ID!) { workflow(id: $id) { id tasks { id nodes { id } runs { id env node { id } } } } }`, variables: { id: w.alpha.workflowId } }),
  },
  "Query.workflows": { expect: anySignedIn, op: () => ({ query: `{ workflows(first: 10) { nodes { id tasks { id runs { id node { id } } } } } }` }) },
  "Query.task": { expect: alphaReaders, op: (w) => ({ query: `query($id: ID!) { task(id: $id) { id workflow { id } runs { id } } }`, variables: { id: w.alpha.taskId } }) },
  "Query.run": { expect: runOnA1Readers, op: (w) => ({ query: `query($id: ID!) { run(id: $id) { id env node { id } } }`, variables: { id: w.alpha.runs["a-1"] } }) },
  "Query.runLogs": { expect: runOnA1Readers, op: (w) => ({ query: `query($id: ID!) { runLogs(runId: $id) { nodes { runId seq } } }`, variables: { id: w.alpha.runs["a-1"] } }) },
  "Query.accounting": { expect: anySignedIn, op: () => ({ query: `{ accounting(groupBy: [NODE, USER]) { node user runs } }` }) },
  "Query.project": { expect: alphaReaders, op: () => ({ query: `{ project(id: "alpha") { id nodeIds members { subject } } }` }) },
  "Query.projects": { expect: anySignedIn, op: () => ({ query: `{ projects { nodes { id name nodeIds } } }` }) },
  "Query.apiTokens": { expect: anySignedIn, op: () => ({ query: `{ apiTokens { id ownerSubject } }` }) },
  "Query.deadLetters": { expect: adminOnly, op: () => ({ query: `{ deadLetters { nodes { id } } }` }) },
  "Query.auditEvents": { expect: adminOnly, op: () => ({ query: `{ auditEvents(first: 5) { nodes { id action } } }` }) },
  "Query.auditChain": { expect: adminOnly, op: () => ({ query: `{ auditChain { intact } }` }) },
  "Query.users": { expect: adminOnly, op: () => ({ query: `{ users { subject } }` }) },

  "Mutation.submitWorkflow": {
    expect: alphaWriters,
    op: (w) => ({
      query: `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id tasks { id runs { id } } } }`,
      variables: { input: { project: "alpha", tasks: [{ key: "t", tool: w.toolRef, nodes: ["a-1"], params: { value: "v" } }] } },
    }),
  },
  "Mutation.cancelWorkflow": { expect: alphaWriters, op: async (w) => ({ query: `mutation($id: ID!) { cancelWorkflow(id: $id) { id state } }`, variables: { id: (await adminSubmit(w)).workflowId } }) },
  "Mutation.cancelTask": { expect: alphaWriters, op: async (w) => ({ query: `mutation($id: ID!) { cancelTask(id: $id) { id state } }`, variables: { id: (await adminSubmit(w)).taskId } }) },
  "Mutation.retryTask": { expect: alphaWriters, op: async (w) => ({ query: `mutation($id: ID!) { retryTask(id: $id) { id state } }`, variables: { id: (await adminCancelled(w)).taskId } }) },
  "Mutation.registerNode": { expect: adminOnly, op: (w) => ({ query: `mutation($id: ID!) { registerNode(input: { id: $id }) { node { id } } }`, variables: { id: w.fresh("new") } }) },
  // ACTIVE on an ACTIVE node changes nothing, so the order of the personas does not matter.
  "Mutation.setNodeAdminState": {
    expect: { ...all("FORBIDDEN"), researcherOfBeta: "NOT_FOUND", operatorOfA1: "ok", admin: "ok" },
    op: () => ({ query: `mutation { setNodeAdminState(id: "a-1", state: ACTIVE) { id adminState } }` }),
  },
  // No agent runs in this world, so rotating a-1's credential disturbs nothing; alpha's members see a-1 but do not operate it.
  "Mutation.rotateNodeCredential": {
    expect: { ...all("FORBIDDEN"), researcherOfBeta: "NOT_FOUND", operatorOfA1: "ok", admin: "ok" },
    op: () => ({ query: `mutation { rotateNodeCredential(id: "a-1") { node { id } credential } }` }),
  },
  "Mutation.grantNodeOperator": { expect: adminOnly, op: (w) => ({ query: `mutation($s: String!) { grantNodeOperator(nodeId: "a-2", subject: $s) { id } }`, variables: { s: w.fresh("op") } }) },
  "Mutation.revokeNodeOperator": {
    expect: adminOnly,
    op: async (w) => {
      const s = w.fresh("op");
      await gqlOk(w.url, `mutation($s: String!) { grantNodeOperator(nodeId: "a-2", subject: $s) { id } }`, { s });
      return { query: `mutation($s: String!) { revokeNodeOperator(nodeId: "a-2", subject: $s) { id } }`, variables: { s } };
    },
  },
  "Mutation.removeNode": {
    expect: adminOnly,
    op: async (w) => {
      const id = await registerNode(w);
      await gqlOk(w.url, `mutation($id: ID!) { setNodeAdminState(id: $id, state: DISABLED) { id } }`, { id });
      return { query: `mutation($id: ID!) { removeNode(id: $id) { id removedAt } }`, variables: { id } };
    },
  },
  // Only the operator of the artifact's node (or ADMIN) releases it; alpha's members see it but may not decide.
  "Mutation.decideArtifactRelease": {
    expect: { ...all("FORBIDDEN"), researcherOfBeta: "NOT_FOUND", operatorOfA1: "ok", admin: "ok" },
    op: async (w) => ({ query: `mutation($id: ID!) { decideArtifactRelease(id: $id, decision: APPROVE, comment: "ok") { id state } }`, variables: { id: await w.pendingArtifact() } }),
  },
  "Mutation.registerTool": {
    expect: adminOnly,
    op: (w) => ({ query: `mutation($n: String!) { registerTool(input: { name: $n, version: "1", executable: "/bin/true" }) { id } }`, variables: { n: w.fresh("tool") } }),
  },
  "Mutation.createProject": { expect: adminOnly, op: (w) => ({ query: `mutation($n: String!) { createProject(input: { name: $n }) { id } }`, variables: { n: w.fresh("proj") } }) },
  "Mutation.addProjectMember": {
    expect: alphaOwners,
    op: (w) => ({ query: `mutation($s: String!) { addProjectMember(project: "alpha", subject: $s, role: VIEWER) { subject role } }`, variables: { s: w.fresh("member") } }),
  },
  "Mutation.setProjectMemberRole": {
    expect: alphaOwners,
    op: async (w) => ({ query: `mutation($s: String!) { setProjectMemberRole(project: "alpha", subject: $s, role: RESEARCHER) { role } }`, variables: { s: await addMember(w) } }),
  },
  "Mutation.removeProjectMember": {
    expect: alphaOwners,
    op: async (w) => ({ query: `mutation($s: String!) { removeProjectMember(project: "alpha", subject: $s) { id } }`, variables: { s: await addMember(w) } }),
  },
  "Mutation.addProjectNode": { expect: adminOnly, op: async (w) => ({ query: `mutation($n: ID!) { addProjectNode(project: "alpha", nodeId: $n) { id } }`, variables: { n: await registerNode(w) } }) },
  "Mutation.removeProjectNode": {
    expect: adminOnly,
    op: async (w) => {
      const n = await registerNode(w);
      await gqlOk(w.url, `mutation($n: ID!) { addProjectNode(project: "alpha", nodeId: $n) { id } }`, { n });
      return { query: `mutation($n: ID!) { removeProjectNode(project: "alpha", nodeId: $n) { id } }`, variables: { n } };
    },
  },
  "Mutation.createApiToken": { expect: anySignedIn, op: (w) => ({ query: `mutation($n: String!) { createApiToken(input: { name: $n }) { apiToken { id } } }`, variables: { n: w.fresh("t") } }) },
  "Mutation.revokeApiToken": {
    expect: anySignedIn,
    op: async (w, persona) => {
      const owned = await w.token(persona === "anonymous" ? "nobody" : SUBJECTS[persona]);
      return { query: `mutation($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }`, variables: { id: owned.id } };
    },
  },
  "Mutation.grantRole": { expect: adminOnly, op: (w) => ({ query: `mutation($s: String!) { grantRole(subject: $s, role: NODE_OPERATOR) { roles } }`, variables: { s: w.fresh("user") } }) },
  "Mutation.revokeRole": {
    expect: adminOnly,
    op: async (w) => {
      const s = w.fresh("user");
      await gqlOk(w.url, `mutation($s: String!) { grantRole(subject: $s, role: NODE_OPERATOR) { roles } }`, { s });
      return { query: `mutation($s: String!) { revokeRole(subject: $s, role: NODE_OPERATOR) { roles } }`, variables: { s } };
    },
  },
};

async function rootFieldsOfSchema(): Promise<string[]> {
  const schema = await createSchema();
  return [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap((type) =>
    isObjectType(type) ? Object.keys(type.getFields()).map((field) => `${type.name}.${field}`) : [],
  );
}

const rules = suite("auth: every root field has a rule");

rules("names a rule for every Query, Mutation and Subscription field, and no field that does not exist", async () => {
  const fields = await rootFieldsOfSchema();
  assert.ok(fields.length > 40, `only ${fields.length} root fields found`);
  assert.equal(fields.filter((f) => !(f in RULES)), [], "root fields without a rule");
  assert.equal(Object.keys(RULES).filter((f) => !fields.includes(f)), [], "rules for fields that do not exist");
});

rules.run();

const matrix = suite("auth: who may call what, over HTTP");
let env: TestEnv;
let world: World;

matrix.before(async () => {
  env = await createTestEnv();
  world = await createWorld(env);
});

matrix.after(async () => {
  await env?.dispose();
});

matrix("has a case for every Query and Mutation field, and none for a field that does not exist", async () => {
  const fields = (await rootFieldsOfSchema()).filter((f) => !f.startsWith("Subscription."));
  assert.equal(fields.filter((f) => !(f in CASES)), [], "fields without a case");
  assert.equal(Object.keys(CASES).filter((f) => !fields.includes(f)), [], "cases for fields that do not exist");
});

for (const [field, entry] of Object.entries(CASES)) {
  matrix(`${field}: anonymous is told to sign in; ${describe(entry.expect)}`, async () => {
    const problems: string[] = [];
    for (const persona of PERSONAS) {
      const operation = await entry.op(world, persona);
      const result = await post(world.url, operation, world.tokens[persona]);
      const code = result.errors?.[0]?.extensions?.code ?? (result.data ? "ok" : "none");
      const wanted = persona === "anonymous" ? "UNAUTHENTICATED" : entry.expect[persona];
      if (code !== wanted) problems.push(`${persona}: expected ${wanted}, got ${code} ${JSON.stringify(result.errors ?? result.data).slice(0, 300)}`);
      if (persona === "anonymous" && (result.status !== 401 || !/^Bearer\b/.test(result.challenge ?? ""))) {
        problems.push(`anonymous: expected HTTP 401 with a Bearer challenge, got ${result.status} ${result.challenge}`);
      }
      if (wanted !== "ok" && result.data) problems.push(`${persona}: refused, yet data came back ${JSON.stringify(result.data).slice(0, 200)}`);
      const leaked = world.leaks(persona, result, operation);
      if (leaked.length > 0) problems.push(`${persona}: the answer carries ids it may not see: ${leaked.join(", ")}`);
    }
    assert.equal(problems, []);
  });
}

matrix("a node's operator reads the runs on its node, but not through them the rest of the workflow (other nodes, their runs)", async () => {
  const operation = { query: `query($id: ID!) { run(id: $id) { id task { id nodes { id } runs { id node { id } } workflow { id } } } }`, variables: { id: world.alpha.runs["a-1"] } };
  const result = await post(world.url, operation, world.tokens.operatorOfA1);
  assert.is(result.errors?.[0]?.extensions?.code, "NOT_FOUND", JSON.stringify(result));
  assert.equal((result.errors?.[0] as { path?: unknown } | undefined)?.path, ["run", "task"]);
  assert.equal(world.leaks("operatorOfA1", result, operation), []);
  const member = await post(world.url, operation, world.tokens.viewerOfAlpha);
  assert.equal(member.data?.run.task.nodes, [{ id: "a-1" }, { id: "a-2" }], JSON.stringify(member));
});

matrix("a member removed from a project cannot get its workflow back by replaying an idempotency key", async () => {
  const subject = world.fresh("leaver");
  const { token } = await world.token(subject);
  const member = (role: string) => gqlOk(world.url, `mutation($s: String!, $r: ProjectRole!) { addProjectMember(project: "alpha", subject: $s, role: $r) { subject } }`, { s: subject, r: role });
  await member("RESEARCHER");
  const submit = {
    query: `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id tasks { runs { id node { id } } } } }`,
    variables: { input: { project: "alpha", idempotencyKey: "replay-1", tasks: [{ key: "t", tool: world.toolRef, nodes: ["a-1"], params: { value: "v" } }] } },
  };
  const first = await post(world.url, submit, token);
  const workflowId = first.data?.submitWorkflow.id as string;
  assert.ok(workflowId, JSON.stringify(first));
  await gqlOk(world.url, `mutation($s: String!) { removeProjectMember(project: "alpha", subject: $s) { id } }`, { s: subject });
  const replay = await post(world.url, submit, token);
  assert.is(replay.errors?.[0]?.extensions?.code, "NOT_FOUND", JSON.stringify(replay));
  assert.ok(!JSON.stringify(replay).includes(workflowId), JSON.stringify(replay));
  await member("VIEWER");
  const asViewer = await post(world.url, submit, token);
  assert.is(asViewer.errors?.[0]?.extensions?.code, "FORBIDDEN", JSON.stringify(asViewer));
  assert.ok(!JSON.stringify(asViewer).includes(workflowId), JSON.stringify(asViewer));
});

matrix("accounting counts only the finished runs of the caller's projects and operated nodes", async () => {
  const nodesSeen = async (persona: Persona) => {
    const result = await post(world.url, { query: `{ accounting(groupBy: [NODE]) { node runs } }` }, world.tokens[persona]);
    return (result.data?.accounting as { node: string }[]).map((row) => row.node).sort();
  };
  assert.equal(await nodesSeen("admin"), ["a-1", "a-2", "b-1"]);
  assert.equal(await nodesSeen("viewerOfAlpha"), ["a-1", "a-2"]);
  assert.equal(await nodesSeen("researcherOfBeta"), ["b-1"]);
  assert.equal(await nodesSeen("operatorOfA1"), ["a-1"]);
});

function describe(expect: Record<Signed, Outcome>): string {
  const allowed = Object.entries(expect).filter(([, o]) => o === "ok").map(([p]) => p);
  return allowed.length === 6 ? "every signed-in persona is allowed" : `allowed: ${allowed.join(", ")}`;
}

matrix.run();
