/**
 * The world the authorization matrix runs in: projects `alpha` (nodes a-1, a-2) and `beta` (b-1),
 * a workflow in each (runs stay QUEUED: no agent), a tool with a secret, and one real API token per
 * persona. Every id of each project's objects is recorded, so any answer can be searched for ids
 * its caller must not see.
 */
import { createApiToken } from "../../src/auth/index.js";
import { GlobalRole } from "../../src/kernel/index.js";
import type { TestEnv } from "../support/env.js";
import { gqlOk, type GqlResult } from "../support/graphql.js";
import { REGISTER_TOOL } from "../support/fixtures.js";

export const PERSONAS = ["anonymous", "viewerOfAlpha", "researcherOfBeta", "researcherOfAlpha", "ownerOfAlpha", "operatorOfA1", "admin"] as const;
export type Persona = (typeof PERSONAS)[number];

/** Subjects the personas' tokens act as (the anonymous caller has none). */
export const SUBJECTS: Record<Exclude<Persona, "anonymous">, string> = {
  viewerOfAlpha: "vera-viewer",
  researcherOfBeta: "bert-beta",
  researcherOfAlpha: "rosa-researcher",
  ownerOfAlpha: "otto-owner",
  operatorOfA1: "nina-operator",
  admin: "ada-admin",
};

export const TOOL_SECRET = "tool-secret-value";
export const RUN_SECRET = "run-secret-value";

export interface Operation {
  query: string;
  variables?: Record<string, unknown>;
}

export interface ProjectFixture {
  id: string;
  workflowId: string;
  taskId: string;
  /** The workflow's runs by node id. */
  runs: Record<string, string>;
  /** Every workflow, task and run id of the project (throwaway ones included) and its node ids. */
  ids: Set<string>;
  /** Runs of the project on nodes other than a-1 (a-1's operator must not see them). */
  runsOffA1: Set<string>;
}

export interface World {
  url: string;
  tokens: Record<Persona, string | null>;
  alpha: ProjectFixture;
  beta: ProjectFixture;
  toolId: string;
  toolRef: string;
  /** As ADMIN: submits a workflow to a project on the given nodes and records its ids. */
  submit(project: "alpha" | "beta", nodes: string[]): Promise<{ workflowId: string; taskId: string; runs: Record<string, string> }>;
  /** As ADMIN: a new API token of `subject` (no roles unless given). */
  token(subject: string, roles?: GlobalRole[], expiresAt?: Date | null): Promise<{ token: string; id: string }>;
  /** Ids (and secret values) in `result` that `persona` must not see; ids it sent itself, echoed in an error, aside. */
  leaks(persona: Persona, result: unknown, request?: unknown): string[];
  /** A fresh name for throwaway objects. */
  fresh(prefix: string): string;
  /** A new PENDING_REVIEW artifact (policy review) of alpha's run on a-1; returns its id. */
  pendingArtifact(): Promise<string>;
}

const SUBMIT = `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id tasks { id runs { id node { id } } } } }`;

export async function createWorld(env: TestEnv): Promise<World> {
  const url = env.orchestrator.url;
  let counter = 0;
  const fresh = (prefix: string) => `${prefix}-${++counter}`;

  for (const id of ["a-1", "a-2", "b-1"]) {
    await gqlOk(url, `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id } } }`, { input: { id, capacity: 2 } });
  }
  const toolRef = "matrix-tool@1.0.0";
  const tool = await gqlOk<{ registerTool: { id: string } }>(url, REGISTER_TOOL, {
    input: { name: "matrix-tool", version: "1.0.0", executable: process.execPath, args: [{ id: "value", type: "STRING", position: 0, default: "x" }], env: { TOOL_SECRET } },
  });

  const fixtures = {} as Record<"alpha" | "beta", ProjectFixture>;
  const submit: World["submit"] = async (project, nodes) => {
    const data = await gqlOk<{ submitWorkflow: { id: string; tasks: { id: string; runs: { id: string; node: { id: string } }[] }[] } }>(url, SUBMIT, {
      input: { project, tasks: [{ key: "t", tool: toolRef, nodes, params: { value: "v" } }] },
    });
    const workflow = data.submitWorkflow;
    const task = workflow.tasks[0];
    const runs = Object.fromEntries(task.runs.map((r) => [r.node.id, r.id]));
    const ids = fixtures[project].ids;
    [workflow.id, task.id, ...Object.values(runs)].forEach((id) => ids.add(id));
    Object.entries(runs).forEach(([node, id]) => node !== "a-1" && fixtures[project].runsOffA1.add(id));
    return { workflowId: workflow.id, taskId: task.id, runs };
  };

  for (const [name, nodes] of [["alpha", ["a-1", "a-2"]], ["beta", ["b-1"]]] as const) {
    const project = await gqlOk<{ createProject: { id: string } }>(url, `mutation($n: String!) { createProject(input: { name: $n }) { id } }`, { n: name });
    for (const nodeId of nodes) await gqlOk(url, `mutation($p: ID!, $n: ID!) { addProjectNode(project: $p, nodeId: $n) { id } }`, { p: name, n: nodeId });
    fixtures[name] = { id: project.createProject.id, workflowId: "", taskId: "", runs: {}, ids: new Set([project.createProject.id, ...nodes]), runsOffA1: new Set() };
    const { workflowId, taskId, runs } = await submit(name, [...nodes]);
    Object.assign(fixtures[name], { workflowId, taskId, runs });
  }
  // Cancelled runs are finished: accounting then has a row for every node to leak, if it would.
  for (const [name, nodes] of [["alpha", ["a-1", "a-2"]], ["beta", ["b-1"]]] as const) {
    const { workflowId } = await submit(name, [...nodes]);
    await gqlOk(url, `mutation($id: ID!) { cancelWorkflow(id: $id) { id } }`, { id: workflowId });
  }
  // Run.env comes from the tool; a per-run secret makes the masking visible on runs too.
  await env.sql(`update run set env = env || jsonb_build_object('RUN_SECRET', ?::text)`, [RUN_SECRET]);

  const members: [Persona, "alpha" | "beta", string][] = [
    ["viewerOfAlpha", "alpha", "VIEWER"],
    ["researcherOfBeta", "beta", "RESEARCHER"],
    ["researcherOfAlpha", "alpha", "RESEARCHER"],
    ["ownerOfAlpha", "alpha", "OWNER"],
  ];
  for (const [persona, project, role] of members) {
    await gqlOk(url, `mutation($p: ID!, $s: String!, $r: ProjectRole!) { addProjectMember(project: $p, subject: $s, role: $r) { subject } }`, {
      p: project,
      s: SUBJECTS[persona as keyof typeof SUBJECTS],
      r: role,
    });
  }
  // A node operator holds the NODE_OPERATOR role and operates given nodes (DESIGN §5): both are granted here.
  await gqlOk(url, `mutation($s: String!) { grantRole(subject: $s, role: NODE_OPERATOR) { roles } }`, { s: SUBJECTS.operatorOfA1 });
  await gqlOk(url, `mutation($s: String!) { grantNodeOperator(nodeId: "a-1", subject: $s) { id } }`, { s: SUBJECTS.operatorOfA1 });

  const token: World["token"] = async (subject, roles = [], expiresAt = null) => {
    const { token, record } = await createApiToken(env.orchestrator.orm.em.fork(), { name: fresh("token"), ownerSubject: subject, roles, expiresAt });
    return { token, id: record.id };
  };
  const tokens = { anonymous: null } as Record<Persona, string | null>;
  for (const [persona, subject] of Object.entries(SUBJECTS)) {
    tokens[persona as Persona] = (await token(subject, persona === "admin" ? [GlobalRole.ADMIN] : [])).token;
  }

  const leaks = (persona: Persona, result: unknown, request: unknown = null): string[] => {
    const hidden = hiddenIds(persona, fixtures);
    const text = JSON.stringify(result);
    const sent = JSON.stringify(request);
    const secrets = persona === "admin" ? [] : [TOOL_SECRET, RUN_SECRET].filter((secret) => text.includes(secret));
    return [...[...hidden].filter((id) => mentions(text, id) && !mentions(sent, id)), ...secrets];
  };
  const pendingArtifact = async () => {
    const [row] = await env.sql<{ id: string }>(
      `insert into artifact (id, run_id, node_id, path, size_bytes, sha256, state, release_policy, created_at)
       select gen_random_uuid(), id, node_id, ?, 1, repeat('0', 64), 'PENDING_REVIEW', 'REVIEW', now() from run where id = ? returning id`,
      [fresh("out"), fixtures.alpha.runs["a-1"]],
    );
    return row.id;
  };
  return { url, tokens, alpha: fixtures.alpha, beta: fixtures.beta, toolId: tool.registerTool.id, toolRef, submit, token, leaks, fresh, pendingArtifact };
}

/** The ids a persona must never find in an answer: those of projects it is not a member of. */
function hiddenIds(persona: Persona, fixtures: Record<"alpha" | "beta", ProjectFixture>): Set<string> {
  switch (persona) {
    case "admin":
      return new Set();
    case "researcherOfBeta":
      return fixtures.alpha.ids;
    case "operatorOfA1": {
      // It operates a-1, so alpha's runs there are its to see; nothing of beta, nor a-2 and its runs.
      return new Set([...fixtures.beta.ids, "a-2", ...fixtures.alpha.runsOffA1]);
    }
    case "anonymous":
      return new Set([...fixtures.alpha.ids, ...fixtures.beta.ids]);
    default:
      return fixtures.beta.ids;
  }
}

/** Whether `text` names `id` as a whole word ("b-1" is not found inside a UUID such as "…ab-1f…"). */
function mentions(text: string, id: string): boolean {
  return new RegExp(`(?<![A-Za-z0-9-])${id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![A-Za-z0-9-])`).test(text);
}

/** A POST that keeps the status and the Bearer challenge. */
export async function post(url: string, operation: Operation, token: string | null): Promise<GqlResult & { status: number; challenge: string | null }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: operation.query, variables: operation.variables ?? {} }),
    signal: AbortSignal.timeout(30_000),
  });
  return { ...((await response.json()) as GqlResult), status: response.status, challenge: response.headers.get("www-authenticate") };
}
