/**
 * Files between tasks, end to end (real agents, broker and files): a federated-learning-style round
 * where two nodes each write a few MiB of weights, released automatically, and an aggregator on a
 * third node receives both, read-only in its sandbox, listed with their checksums in
 * fem-inputs.json, and writes a new model the researcher downloads over HTTP. A chunk altered on
 * its way is detected and sent again; a stored input that fails its checksum, or one the node's
 * operator rejected, makes the dependent fail with the reason.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createApiToken } from "../../src/auth/index.js";
import type { RunInputChunk } from "../../src/messaging/contracts.js";
import type { AgentProcess } from "../support/agent.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { finishedWorkflow, REGISTER_TOOL, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { addToTestProject, gqlOk, TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { PYTHON, skipWithoutBubblewrap } from "../support/sandbox.js";
import { waitUntil } from "../support/wait.js";

const test = suite("federated round: input files reach the dependent's sandbox in checked chunks");
let env: TestEnv;
let operatorToken: string;

/** Checks every listed input against its sha256; writes { checked: n }. */
const CHECK = `
import hashlib, json
files = json.load(open("fem-inputs.json"))["files"]
for f in files:
    assert hashlib.sha256(open(f["file"], "rb").read()).hexdigest() == f["sha256"], f["file"]
json.dump({"checked": len(files)}, open("result.json", "w"))
`;
const agents = new Map<string, AgentProcess>();

const NODES = { a: "fl-site-a", b: "fl-site-b", agg: "fl-aggregator", review: "fl-site-review" } as const;
const POLICY: Record<string, string> = { [NODES.a]: "auto", [NODES.b]: "auto", [NODES.agg]: "auto", [NODES.review]: "review" };
/** Float32 values per weights file: 3 MiB. */
const WEIGHTS = 786_432;

/** Chunks served to nodes, by `<artifactId>:<index>`; `alter` names one to corrupt once (data changed, sha256 kept). */
const served = new Map<string, number>();
let alter: { index: number; done: boolean } | null = null;

function onInputChunk(chunk: RunInputChunk): RunInputChunk {
  const key = `${chunk.artifactId}:${chunk.index}`;
  served.set(key, (served.get(key) ?? 0) + 1);
  if (alter && !alter.done && chunk.index === alter.index) {
    alter.done = true;
    const data = Buffer.from(chunk.data, "base64");
    data[0] ^= 0xff;
    return { ...chunk, data: data.toString("base64") };
  }
  return chunk;
}

/** Writes `weights.bin`: WEIGHTS float32 values, value × ((i mod 97) + 1). */
const TRAIN = `const fs = require('fs'); const v = Number(process.argv[1]); const a = new Float32Array(Number(process.argv[2] || ${WEIGHTS})); for (let i = 0; i < a.length; i++) a[i] = v * ((i % 97) + 1); fs.writeFileSync('weights.bin', Buffer.from(a.buffer));`;

/**
 * The aggregator: checks every file fem-inputs.json lists against its sha256, tries to write to it
 * (it must be read-only), averages the weights into model.bin and reports what it saw.
 */
const AGGREGATE = `
import array, hashlib, json, os
inputs = json.load(open("fem-inputs.json"))
seen, models = [], []
for f in inputs["files"]:
    data = open(f["file"], "rb").read()
    try:
        open(f["file"], "ab").close()
        writable = True
    except OSError:
        writable = False
    seen.append({"task": f["task"], "node": f["node"], "path": f["path"], "sizeBytes": len(data),
                 "sha256": hashlib.sha256(data).hexdigest(), "listed": f["sha256"], "writable": writable})
    w = array.array("f"); w.frombytes(data); models.append(w)
avg = array.array("f", [sum(v) / len(models) for v in zip(*models)])
open("model.bin", "wb").write(avg.tobytes())
json.dump({"inputs": seen, "model": hashlib.sha256(avg.tobytes()).hexdigest()}, open("result.json", "w"))
`;

test.before(async () => {
  env = await createTestEnv({}, { onInputChunk });
  await env.registerNodes([NODES.a, NODES.b, NODES.review]);
  await gqlOk(env.orchestrator.url, `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id } } }`, {
    input: { id: NODES.agg, capacity: 2, launchers: ["process", "sandbox"], labels: { site: NODES.agg } },
  });
  await addToTestProject(env.orchestrator.url, [NODES.agg]);
  await registerNodeScriptTool(env.orchestrator.url, "fl-train", TRAIN, { outputs: ["weights.bin"] });
  for (const launcher of ["sandbox", "process"]) {
    await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
      input: {
        name: `fl-aggregate-${launcher}`,
        version: "1",
        executable: PYTHON,
        launcher,
        resultFile: "result.json",
        outputs: ["model.bin"],
        args: [{ id: "script", type: "STRING", position: 0, prefix: "-c", default: AGGREGATE }],
      },
    });
  }
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
    input: { name: "fl-check", version: "1", executable: PYTHON, resultFile: "result.json", args: [{ id: "script", type: "STRING", position: 0, prefix: "-c", default: CHECK }] },
  });
  for (const nodeId of Object.values(NODES)) await startAgent(nodeId);
  await gqlOk(env.orchestrator.url, `mutation { grantRole(subject: "otto", role: NODE_OPERATOR) { roles } }`);
  await gqlOk(env.orchestrator.url, `mutation($n: ID!) { grantNodeOperator(nodeId: $n, subject: "otto") { id } }`, { n: NODES.review });
  operatorToken = (await createApiToken(env.orchestrator.orm.em.fork(), { name: "otto", ownerSubject: "otto", roles: [] })).token;
});

test.after(async () => env?.dispose());

async function startAgent(nodeId: string): Promise<AgentProcess> {
  const file = join(env.sandboxRoot, `${nodeId}-policy.yaml`);
  await writeFile(file, `allow: any\noutputs: ${POLICY[nodeId]}\n`);
  const agent = await env.startAgent(nodeId, { env: { FEM_POLICY_FILE: file, FEM_LAUNCHERS: nodeId === NODES.agg ? "process,sandbox" : "process", FEM_INPUT_STALL_MS: "5000" } });
  agents.set(nodeId, agent);
  return agent;
}

/** Chunk files staged in a node's input cache, by file sha256. */
async function stagedInputChunks(nodeId: string): Promise<Map<string, string[]>> {
  const root = join(env.sandboxRoot, nodeId, "input-cache");
  const staged = new Map<string, string[]>();
  for (const sha of await readdir(root).catch(() => [] as string[])) staged.set(sha, await readdir(join(root, sha, "chunks")).catch(() => [] as string[]));
  return staged;
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/**
 * A round; `scale` gives each training node's values (`scale × (i + 1)`), different in each test:
 * the aggregator's node keeps verified files by content, and would not fetch the same weights again.
 */
const round = (trainNodes: string[], launcher: "sandbox" | "process", scale = 1) => ({
  tasks: [
    { key: "train", tool: "fl-train@1.0.0", nodes: trainNodes, nodeParams: trainNodes.map((node, i) => ({ node, params: { value: String(scale * (i + 1)) } })) },
    { key: "aggregate", tool: `fl-aggregate-${launcher}@1`, nodes: [NODES.agg], dependsOn: ["train"], inputs: [{ from: "train", files: "weights.bin" }] },
  ],
});

interface Artifact {
  id: string;
  path: string;
  sizeBytes: number;
  sha256: string;
  state: string;
  downloadUrl: string | null;
}
const OUTPUTS = `query($id: ID!) { run(id: $id) { state failureReason message result outputs { id path sizeBytes sha256 state downloadUrl } } }`;

async function runView(runId: string): Promise<{ state: string; failureReason: string | null; message: string | null; result: any; outputs: Artifact[] }> {
  return (await gqlOk(env.orchestrator.url, OUTPUTS, { id: runId })).run;
}

async function availableOutput(runId: string, path: string): Promise<Artifact> {
  return waitUntil(async () => (await runView(runId)).outputs.find((a) => a.path === path && a.state === "AVAILABLE"), 60_000, `${path} of ${runId} AVAILABLE`);
}

async function download(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const response = await fetch(new URL(path, env.orchestrator.url), { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...headers }, signal: AbortSignal.timeout(30_000) });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

async function logText(runId: string): Promise<string> {
  const lines = await env.sql<{ text: string }>(`select text from log_line where run_id = ? order by seq`, [runId]);
  return lines.map((l) => l.text).join("\n");
}

/** Runs a round; returns the workflow, the train runs' weights artifacts and the aggregate run. */
async function runRound(trainNodes: string[], launcher: "sandbox" | "process", scale = 1) {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: round(trainNodes, launcher, scale) });
  const workflow = await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id, 120_000);
  const train = workflow.tasks.find((t) => t.key === "train")!;
  const aggregateRun = workflow.tasks.find((t) => t.key === "aggregate")!.runs[0]!;
  return { workflow, train, aggregateRun };
}

test("two nodes' weights reach the aggregator's sandbox (bubblewrap) read-only, with matching checksums; the new model downloads whole and by Range with its digest", async () => {
  if (skipWithoutBubblewrap()) return;
  const { workflow, train, aggregateRun } = await runRound([NODES.a, NODES.b], "sandbox");
  assert.is(aggregateRun.state, "SUCCEEDED", `${aggregateRun.message}\n${await logText(aggregateRun.id)}`);
  assert.is(workflow.state, "SUCCEEDED");
  const weights = await Promise.all(train.runs.map(async (r) => ({ node: r.node.id, artifact: await availableOutput(r.id, "weights.bin") })));
  for (const r of train.runs) {
    const usage = (await gqlOk(env.orchestrator.url, `query($id: ID!) { run(id: $id) { usage { outputBytes releasedBytes } } }`, { id: r.id })).run.usage;
    assert.is(usage.releasedBytes, WEIGHTS * 4, "the released weights count in the run's usage");
  }
  const accounting = await gqlOk(env.orchestrator.url, `query($w: ID) { accounting(groupBy: [NODE], filter: { workflowId: $w }) { node releasedBytes } }`, { w: workflow.id });
  assert.equal(
    accounting.accounting.filter((row: { node: string }) => row.node !== NODES.agg),
    [{ node: NODES.a, releasedBytes: WEIGHTS * 4 }, { node: NODES.b, releasedBytes: WEIGHTS * 4 }],
    "and in accounting",
  );
  const view = await runView(aggregateRun.id);
  const seen = view.result.inputs as { task: string; node: string; path: string; sizeBytes: number; sha256: string; listed: string; writable: boolean }[];
  assert.equal(seen.map((s) => s.node).sort(), [NODES.a, NODES.b]);
  for (const s of seen) {
    const upstream = weights.find((w) => w.node === s.node)!.artifact;
    assert.is(s.sizeBytes, WEIGHTS * 4);
    assert.is(s.sha256, upstream.sha256, `the file in the sandbox is the one ${s.node} released`);
    assert.is(s.listed, upstream.sha256, "fem-inputs.json lists its checksum");
    assert.is(s.writable, false, "input files are read-only in the sandbox");
    assert.is(s.task, "train");
    assert.is(s.path, "weights.bin");
  }
  const model = await availableOutput(aggregateRun.id, "model.bin");
  assert.is(model.sha256, view.result.model);
  const whole = await download(model.downloadUrl!);
  assert.is(whole.status, 200);
  assert.is(sha256(whole.body), model.sha256);
  assert.is(whole.headers.get("repr-digest"), `sha-256=:${Buffer.from(model.sha256, "hex").toString("base64")}:`);
  // The mean of value × k over values 1 and 2 is 1.5 × k.
  const floats = new Float32Array(whole.body.buffer, whole.body.byteOffset, WEIGHTS);
  assert.is(floats[0], 1.5);
  assert.is(floats[96], 1.5 * 97);
  const cut = 1_000_000;
  const first = await download(model.downloadUrl!, { range: `bytes=0-${cut - 1}` });
  const rest = await download(model.downloadUrl!, { range: `bytes=${cut}-`, "if-range": whole.headers.get("etag")! });
  assert.is(first.status, 206);
  assert.is(rest.status, 206);
  assert.is(sha256(Buffer.concat([first.body, rest.body])), model.sha256, "the resumed download has the model's digest");
});

test("with the process launcher too; a chunk altered on its way is detected, asked for again, and the round succeeds", async () => {
  alter = { index: 1, done: false };
  served.clear();
  const { train, aggregateRun } = await runRound([NODES.a, NODES.b], "process", 10);
  assert.ok(alter.done, "a chunk was altered");
  assert.is(aggregateRun.state, "SUCCEEDED", `${aggregateRun.message}\n${await logText(aggregateRun.id)}`);
  const logs = await logText(aggregateRun.id);
  assert.match(logs, /chunk 1 failed its checksum .*asked for again/);
  const view = await runView(aggregateRun.id);
  for (const r of train.runs) {
    const artifact = await availableOutput(r.id, "weights.bin");
    assert.is((view.result.inputs as { node: string; sha256: string }[]).find((s) => s.node === r.node.id)!.sha256, artifact.sha256);
  }
  const resent = [...served.entries()].filter(([key, n]) => key.endsWith(":1") && n === 2);
  assert.is(resent.length, 1, `chunk 1 of one file was sent twice: ${JSON.stringify([...served.entries()])}`);
  alter = null;
});

test("an input whose stored copy fails its checksum: the dependent fails REJECTED_BY_NODE, saying which file and why", async () => {
  // The aggregator's node takes nothing until the stored copy is altered: otherwise a fast fetch wins the race.
  const adminState = `mutation($id: ID!, $state: NodeAdminState!) { setNodeAdminState(id: $id, state: $state) { id } }`;
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: round([NODES.a], "process", 7) });
  const workflowId: string = data.submitWorkflow.id;
  // (Submitting to a DRAINING node is refused; the aggregate waits for train anyway.)
  await gqlOk(env.orchestrator.url, adminState, { id: NODES.agg, state: "DRAINING" });
  // Flip a byte of the stored weights before the aggregator fetches them: the node must refuse them.
  const trainRun = await waitUntil(async () => {
    const [row] = await env.sql<{ id: string; state: string }>(`select a.id, a.state from artifact a join run r on r.id = a.run_id join task t on t.id = r.task_id where t.workflow_id = ? and t.key = 'train'`, [workflowId]);
    return row?.state === "AVAILABLE" ? row : undefined;
  }, 60_000, "the weights stored");
  const stored = join(env.config.artifactDir, "files", trainRun.id);
  const bytes = await readFile(stored);
  bytes[10] ^= 0xff;
  // Replaced in one step: a writeFile in place is seen empty for a moment by a delivery already
  // under way, which then (rightly) says the file is no longer in the store.
  await writeFile(`${stored}.flipped`, bytes);
  await rename(`${stored}.flipped`, stored);
  await gqlOk(env.orchestrator.url, adminState, { id: NODES.agg, state: "ACTIVE" });
  const workflow = await finishedWorkflow(env.orchestrator.url, workflowId, 120_000);
  const run = workflow.tasks.find((t) => t.key === "aggregate")!.runs[0]!;
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "REJECTED_BY_NODE");
  assert.match(run.message ?? "", new RegExp(`input train/${NODES.a}/weights.bin failed its checksum 3 times`), `the run's message: ${run.message}`);
});

test("an input the node's operator rejected: the dependent fails with the reason and never reaches its node", async () => {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: round([NODES.review], "process") });
  const workflowId: string = data.submitWorkflow.id;
  const artifact = await waitUntil(async () => {
    const [row] = await env.sql<{ id: string; state: string }>(`select a.id, a.state from artifact a join run r on r.id = a.run_id join task t on t.id = r.task_id where t.workflow_id = ?`, [workflowId]);
    return row?.state === "PENDING_REVIEW" ? row : undefined;
  }, 60_000, "the weights waiting for review");
  await gqlOk(env.orchestrator.url, `mutation($id: ID!) { decideArtifactRelease(id: $id, decision: REJECT, comment: "not this round") { state } }`, { id: artifact.id }, { token: operatorToken });
  const workflow = await finishedWorkflow(env.orchestrator.url, workflowId, 60_000);
  const run = workflow.tasks.find((t) => t.key === "aggregate")!.runs[0]!;
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "REJECTED_BY_NODE");
  assert.match(run.message ?? "", new RegExp(`input train/${NODES.review}/weights.bin is REJECTED`));
  const [{ dispatched }] = await env.sql<{ dispatched: number }>(`select count(*)::int as dispatched from outbox where payload->>'runId' = ? and payload->>'type' = 'run.dispatch'`, [run.id]);
  assert.is(dispatched, 0, "the dependent was never dispatched");
});

test("a released file deleted on its node before it was sent: the artifact FAILS saying so, and so does the dependent", async () => {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: round([NODES.review], "process") });
  const workflowId: string = data.submitWorkflow.id;
  const artifact = await waitUntil(async () => {
    const [row] = await env.sql<{ id: string; state: string; run_id: string }>(`select a.id, a.state, a.run_id from artifact a join run r on r.id = a.run_id join task t on t.id = r.task_id where t.workflow_id = ?`, [workflowId]);
    return row?.state === "PENDING_REVIEW" ? row : undefined;
  }, 60_000, "the weights waiting for review");
  await rm(join(env.sandboxRoot, NODES.review, "runs", `${artifact.run_id}-1`, "weights.bin"));
  await gqlOk(env.orchestrator.url, `mutation($id: ID!) { decideArtifactRelease(id: $id, decision: APPROVE) { state } }`, { id: artifact.id }, { token: operatorToken });
  const failed = await waitUntil(async () => {
    const view = (await runView(artifact.run_id)).outputs.find((a) => a.id === artifact.id)!;
    return view.state === "FAILED" ? (view as Artifact & { reason: string | null }) : undefined;
  }, 30_000, "the artifact FAILED");
  assert.ok(failed);
  const [{ reason }] = await env.sql<{ reason: string }>(`select reason from artifact where id = ?`, [artifact.id]);
  assert.match(reason, /the node could not send it: it was deleted on the node after its manifest listed it/);
  const workflow = await finishedWorkflow(env.orchestrator.url, workflowId, 60_000);
  const run = workflow.tasks.find((t) => t.key === "aggregate")!.runs[0]!;
  assert.is(run.state, "FAILED");
  assert.match(run.message ?? "", /weights\.bin is FAILED: the node could not send it: it was deleted/);
});

test("an agent killed while it fetches an input: the retried run asks only for the chunks not yet on the node", async () => {
  served.clear();
  const count = 12 * 1024 * 1024; // 48 MiB of float32: 192 chunks
  const input = {
    tasks: [
      { key: "train", tool: "fl-train@1.0.0", nodes: [NODES.a], params: { value: "5", count } },
      { key: "check", tool: "fl-check@1", nodes: [NODES.agg], dependsOn: ["train"], inputs: [{ from: "train", files: "weights.bin" }], retry: { maxAttempts: 2, retryOn: ["NODE_LOST"] } },
    ],
  };
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input });
  const [sha, before] = await waitUntil(async () => {
    for (const [sha, chunks] of await stagedInputChunks(NODES.agg)) if (chunks.filter((c) => !c.endsWith(".tmp")).length >= 24) return [sha, chunks] as const;
    return undefined;
  }, 120_000, "part of the input fetched", 20);
  await agents.get(NODES.agg)!.kill9();
  const kept = (await stagedInputChunks(NODES.agg)).get(sha)!.filter((c) => !c.endsWith(".tmp"));
  assert.ok(kept.length >= before.filter((c) => !c.endsWith(".tmp")).length);
  assert.ok(kept.length < 192, "killed before the whole file was in");
  // Requests of the first attempt still queued on the orchestrator are served before the baseline.
  await waitUntil(() => env.orchestrator.inputServer.stats().pending === 0 || undefined, 60_000, "the input server idle");
  const servedBefore = new Map(served);
  await startAgent(NODES.agg);
  const workflow = await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id, 120_000);
  const runs = workflow.tasks.find((t) => t.key === "check")!.runs;
  const last = runs.find((r) => r.attempt === 2);
  assert.ok(last, `a second attempt: ${JSON.stringify(runs.map((r) => [r.attempt, r.state, r.message]))}`);
  assert.is(last!.state, "SUCCEEDED", last!.message ?? "");
  assert.equal(last!.result, { checked: 1 });
  const artifactId = [...served.keys()][0]!.split(":")[0];
  const again = kept.map((name) => Number(name.split("-")[1])).filter((index) => (served.get(`${artifactId}:${index}`) ?? 0) > (servedBefore.get(`${artifactId}:${index}`) ?? 0));
  assert.equal(again, [], `no chunk already on the node was asked for again; attempt 2:\n${await logText(last!.id)}\nattempt 1:\n${await logText(runs.find((r) => r.attempt === 1)!.id)}`);
});

test.run();
