/**
 * Datasets on the node, with real agents: nodes report them (names only), tasks that name them go
 * only to nodes that have them, the sandbox mounts exactly the ones a run asked for, read-only, and
 * a node refuses a dispatch naming one it lacks. Skipped with a reason where bubblewrap is missing.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AGENT_BIN, type AgentProcess } from "../support/agent.js";
import { withoutUser } from "../support/broker.js";
import { runScript } from "../support/script.js";
import { hasBubblewrap, PY_WRITE, PYTHON, skipWithoutBubblewrap } from "../support/sandbox.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { addToTestProject, expectError, gql, gqlOk } from "../support/graphql.js";
import { finishedWorkflow, getWorkflow, REGISTER_TOOL, SUBMIT, TERMINAL, type RunView } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("datasets on the node");

let env: TestEnv;
let dataDir: string;
/** Host paths of every dataset on every node. */
const paths: Record<string, string> = {};

/** Reads its datasets as a hostile tool would: counts lines, looks for other datasets and their host paths, tries to write. */
const PROBE = `
import json, os, sys
hidden = json.loads(sys.argv[1])
try_writes = sys.argv[2] == "yes"
root = os.environ.get("FEM_DATASET_COHORT", "")
${PY_WRITE}json.dump({
    "root": root,
    "lines": len(open(os.path.join(root, "values.txt")).read().splitlines()),
    "otherMounted": os.path.exists("/data/other"),
    "dataEntries": sorted(os.listdir("/data")) if os.path.isdir("/data") else None,
    "hostPathsVisible": [p for p in hidden if os.path.exists(p)],
    "write": write(os.path.join(root, "values.txt")) if try_writes else None,
    "create": write(os.path.join(root, "new.txt")) if try_writes else None,
}, open("result.json", "w"))
`;

/** A dataset directory anyone may write: only the read-only mount can stop a run writing it. */
async function makeDataset(name: string, lines: number): Promise<string> {
  const dir = join(dataDir, name);
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o777);
  const file = join(dir, "values.txt");
  await writeFile(file, Array.from({ length: lines }, (_, i) => `${i + 1}`).join("\n") + "\n");
  await chmod(file, 0o666);
  paths[name] = dir;
  return dir;
}

/** A node with the process and sandbox launchers whose agent's policy file names `datasets`. */
async function startNode(id: string, datasets: Record<string, { path: string; description?: string; labels?: Record<string, string> }>): Promise<AgentProcess> {
  const policyFile = join(env.sandboxRoot, `${id}-policy.json`);
  await writeFile(policyFile, JSON.stringify({ allow: "any", datasets }));
  return env.startAgent(id, { env: { FEM_LAUNCHERS: "process,sandbox", FEM_POLICY_FILE: policyFile } });
}

async function registerNode(id: string): Promise<void> {
  await gqlOk(env.orchestrator.url, `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id } } }`, {
    input: { id, capacity: 2, launchers: ["process", "sandbox"], labels: { kind: "site", site: id } },
  });
  await addToTestProject(env.orchestrator.url, [id]);
}

async function datasetsOf(id: string): Promise<{ name: string; description: string | null; labels: Record<string, string> }[]> {
  return (await gqlOk(env.orchestrator.url, `query($id: ID!) { node(id: $id) { datasets { name description labels } } }`, { id })).node.datasets;
}

async function registerProbe(launcher: "sandbox" | "process"): Promise<void> {
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
    input: {
      name: `probe-${launcher}`,
      version: "1",
      executable: PYTHON,
      launcher,
      resultFile: "result.json",
      args: [
        { id: "script", type: "STRING", position: 0, prefix: "-c", default: PROBE },
        { id: "hidden", type: "STRING", position: 1, default: "[]" },
        { id: "tryWrites", type: "STRING", position: 2, default: "yes" },
      ],
    },
  });
}

const submit = (task: Record<string, unknown>) => gql(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", ...task }] } });

/** The task's runs once every one has ended. */
async function finishedRuns(workflowId: string): Promise<RunView[]> {
  await finishedWorkflow(env.orchestrator.url, workflowId);
  return waitUntil(async () => {
    const runs = (await getWorkflow(env.orchestrator.url, workflowId)).tasks[0]!.runs;
    return runs.every((r) => TERMINAL.includes(r.state)) ? runs : undefined;
  }, 30_000, "every run to end");
}

/** Why a run ended: its message and log lines. */
async function why(run: RunView): Promise<string> {
  const rows = await env.sql<{ text: string }>(`select text from log_line where run_id = ? order by seq`, [run.id]);
  return [run.message ?? "", ...rows.map((r) => r.text)].join("\n");
}

test.before(async () => {
  if (!hasBubblewrap()) return;
  env = await createTestEnv();
  dataDir = join(env.sandboxRoot, "datasets");
  await makeDataset("cohort-a", 3);
  await makeDataset("other-a", 1);
  await makeDataset("cohort-b", 5);
  for (const id of ["ds-a", "ds-b", "ds-c"]) await registerNode(id);
  await startNode("ds-a", {
    cohort: { path: paths["cohort-a"]!, description: "site A's cohort", labels: { year: "2024" } },
    other: { path: paths["other-a"]! },
  });
  await startNode("ds-b", { cohort: { path: paths["cohort-b"]! } });
  await startNode("ds-c", {});
  await registerProbe("sandbox");
  await registerProbe("process");
  await waitUntil(async () => (await datasetsOf("ds-a")).length === 2 && (await datasetsOf("ds-b")).length === 1, 10_000, "heartbeats with datasets");
});

test.after(async () => env?.dispose());

test("a node reports its datasets' names, descriptions and labels, never their paths", async () => {
  if (skipWithoutBubblewrap()) return;
  assert.equal(await datasetsOf("ds-a"), [
    { name: "cohort", description: "site A's cohort", labels: { year: "2024" } },
    { name: "other", description: null, labels: {} },
  ]);
  assert.equal(await datasetsOf("ds-c"), []);
  const stored = await env.sql<{ datasets: string }>(`select datasets::text as datasets from node`);
  assert.not.match(stored.map((r) => r.datasets).join(" "), dataDir, "no path reaches the orchestrator");
});

test("a task naming a dataset only some nodes have goes only to those, and each run reads its own node's dataset", async () => {
  if (skipWithoutBubblewrap()) return;
  const result = await submit({ tool: "probe-sandbox@1", nodeSelector: { kind: "site" }, datasets: ["cohort"], params: { hidden: JSON.stringify(Object.values(paths)) } });
  assert.not.ok(result.errors, JSON.stringify(result.errors));
  const runs = await finishedRuns(result.data!.submitWorkflow.id);
  assert.equal(runs.map((r) => r.node.id).sort(), ["ds-a", "ds-b"]);
  for (const run of runs) assert.is(run.state, "SUCCEEDED", await why(run));
  const byNode = Object.fromEntries(runs.map((r) => [r.node.id, r.result as Record<string, unknown>]));
  assert.is(byNode["ds-a"]!.lines, 3);
  assert.is(byNode["ds-b"]!.lines, 5);
  assert.is(byNode["ds-a"]!.root, "/data/cohort");
});

test("a sandboxed run cannot read another dataset of its node, nor write its own", async () => {
  if (skipWithoutBubblewrap()) return;
  const result = await submit({ tool: "probe-sandbox@1", nodes: ["ds-a"], datasets: ["cohort"], params: { hidden: JSON.stringify(Object.values(paths)) } });
  const [run] = await finishedRuns(result.data!.submitWorkflow.id);
  assert.is(run!.state, "SUCCEEDED", await why(run!));
  const probe = run!.result as Record<string, unknown>;
  assert.is(probe.otherMounted, false, "/data/other is absent");
  assert.equal(probe.dataEntries, ["cohort"]);
  assert.equal(probe.hostPathsVisible, [], "no dataset's host path is visible");
  assert.is(probe.write, "Read-only file system");
  assert.is(probe.create, "Read-only file system");
});

test("the process launcher isolates nothing: FEM_DATASET_<NAME> gives the dataset's path on the node", async () => {
  if (skipWithoutBubblewrap()) return;
  // No writes: the process launcher would let them through to the node's data.
  const result = await submit({ tool: "probe-process@1", nodes: ["ds-b"], datasets: ["cohort"], params: { tryWrites: "no" } });
  const [run] = await finishedRuns(result.data!.submitWorkflow.id);
  assert.is(run!.state, "SUCCEEDED", await why(run!));
  const probe = run!.result as Record<string, unknown>;
  assert.is(probe.root, paths["cohort-b"]);
  assert.is(probe.lines, 5);
});

test("submit refuses a node named explicitly that lacks the dataset, naming both", async () => {
  if (skipWithoutBubblewrap()) return;
  const extensions = expectError(await submit({ tool: "probe-sandbox@1", nodes: ["ds-a", "ds-c"], datasets: ["cohort"] }), "BAD_USER_INPUT", /node "ds-c" does not have dataset "cohort"/);
  assert.is(extensions.field, "tasks[0].nodes");
});

test("submit refuses a selector whose nodes all lack the dataset, naming it", async () => {
  if (skipWithoutBubblewrap()) return;
  expectError(await submit({ tool: "probe-sandbox@1", nodeSelector: { site: "ds-c" }, datasets: ["cohort"] }), "BAD_USER_INPUT", /no active node matching the selector has dataset "cohort"/);
  expectError(await submit({ tool: "probe-sandbox@1", nodeSelector: { site: "ds-b" }, datasets: ["cohort", "other"] }), "BAD_USER_INPUT", /has datasets "cohort", "other"/);
});

test("submit refuses an unknown dataset and a malformed name", async () => {
  if (skipWithoutBubblewrap()) return;
  expectError(await submit({ tool: "probe-sandbox@1", nodeSelector: { kind: "site" }, datasets: ["nowhere"] }), "BAD_USER_INPUT", /unknown dataset "nowhere": no node of this workflow's project has it/);
  expectError(await submit({ tool: "probe-sandbox@1", nodes: ["ds-a"], datasets: ["../etc"] }), "BAD_USER_INPUT", /"..\/etc" is not a dataset name/);
});

test("a node refuses a dispatch naming a dataset it does not have, REJECTED_BY_NODE naming the dataset", async () => {
  if (skipWithoutBubblewrap()) return;
  // The node had the dataset when the task was submitted; its operator removed it before the run arrived.
  await registerNode("ds-d");
  const agent = await startNode("ds-d", { cohort: { path: paths["cohort-b"]! } });
  await waitUntil(async () => (await datasetsOf("ds-d")).length === 1, 10_000, "ds-d's datasets");
  await agent.stop();
  const result = await submit({ tool: "probe-sandbox@1", nodes: ["ds-d"], datasets: ["cohort"] });
  assert.not.ok(result.errors, JSON.stringify(result.errors));
  await startNode("ds-d", {});
  const [run] = await finishedRuns(result.data!.submitWorkflow.id);
  assert.is(run!.state, "FAILED");
  assert.is(run!.failureReason, "REJECTED_BY_NODE");
  assert.match(run!.message ?? "", /dataset "cohort" is not on node ds-d/);
  assert.not.ok(existsSync(join(env.sandboxRoot, "ds-d", "runs", `${run!.id}-1`)), "no sandbox was made");
  await waitUntil(async () => (await datasetsOf("ds-d")).length === 0, 10_000, "ds-d to report no dataset");
});

test("an agent whose policy names a dataset path that does not exist stops at start with one line naming it", async () => {
  if (skipWithoutBubblewrap()) return;
  const missing = join(dataDir, "gone");
  const policyFile = join(env.sandboxRoot, "ds-e-policy.json");
  await writeFile(policyFile, JSON.stringify({ allow: "any", datasets: { gone: { path: missing } } }));
  const refused = await runScript(AGENT_BIN, [], {
    AMQP_URL: withoutUser(env.vhost.url),
    FEM_NODE_CREDENTIAL: "fem_node_not-needed-the-policy-file-is-read-first",
    FEM_NODE_ID: "ds-e",
    FEM_SANDBOX_DIR: join(env.sandboxRoot, "ds-e"),
    FEM_ALLOW_UNSIGNED: "true",
    FEM_POLICY_FILE: policyFile,
  }, 20_000);
  assert.is(refused.code, 1);
  assert.is(refused.stderr, `fem-agent: cannot start: FEM_POLICY_FILE ${policyFile} is invalid: datasets.gone: path ${missing} does not exist\n`);
});

test.run();
