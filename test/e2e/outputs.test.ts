/**
 * Outputs a run leaves on its node, with real agents and files: the manifest (what is listed, what
 * is refused and why), and the node's release policy: `auto`, `review` by the node's operator
 * through the API, and `local`, decided only with `fem-agent outputs` on the node.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createApiToken } from "../../src/auth/index.js";
import { topics } from "../../src/live/topics.js";
import { MAX_ARTIFACT_BYTES } from "../../src/messaging/contracts.js";
import { toolDigest } from "../../src/shared/index.js";
import { AGENT_BIN, type AgentProcess } from "../support/agent.js";
import { createEventPublisher } from "../support/amqp.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { collect, expectError, gql, gqlOk, wsClient } from "../support/graphql.js";
import { finishedWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("outputs: manifests and the node's release policy");
let env: TestEnv;
const agents = new Map<string, AgentProcess>();
let researcherToken: string;
const operatorTokens: Record<string, string> = {};

const OUTPUTS = `query($id: ID!) { run(id: $id) { state outputs { id path sizeBytes sha256 state releasePolicy reason decidedBy decidedAt comment } } }`;
const DECIDE = `mutation($id: ID!, $decision: ArtifactDecision!, $comment: String) { decideArtifactRelease(id: $id, decision: $decision, comment: $comment) { id state decidedBy comment } }`;

interface ArtifactView {
  id: string;
  path: string;
  sizeBytes: number | null;
  sha256: string | null;
  state: string;
  releasePolicy: string;
  reason: string | null;
  decidedBy: string | null;
  decidedAt: string | null;
  comment: string | null;
}

const WEIGHTS = "x".repeat(300_000);
/** A released file is APPROVED, then TRANSFERRING and AVAILABLE as its node sends it (test/e2e/transfer.test.ts). */
const RELEASED = ["APPROVED", "TRANSFERRING", "AVAILABLE"];
const released = (state: string) => (RELEASED.includes(state) ? "released" : state);
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

test.before(async () => {
  env = await createTestEnv();
  const url = env.orchestrator.url;
  await env.registerNodes(["out-auto", "out-review", "out-local", "out-quiet"]);
  const writer = [
    "const fs = require('fs');",
    "fs.mkdirSync('out/sub', { recursive: true });",
    "fs.writeFileSync('out/a.txt', 'alpha\\n');",
    `fs.writeFileSync('out/sub/weights.bin', 'x'.repeat(${WEIGHTS.length}));`,
    "fs.symlinkSync('/etc/passwd', 'out/passwd');",
    "fs.writeFileSync('big.bin', '');",
    `fs.truncateSync('big.bin', ${MAX_ARTIFACT_BYTES + 1});`,
  ].join(" ");
  await registerNodeScriptTool(url, "writer", writer, { outputs: ["out/**", "big.bin"] });
  // The API refuses globs that leave the sandbox; a subverted orchestrator (here: its database) may still send them.
  await escapeOutputs("writer", ["out/**", "big.bin", "../*", "/etc/passwd"]);
  await registerNodeScriptTool(url, "report", "const fs = require('fs'); fs.mkdirSync('out'); fs.writeFileSync('out/a.txt', 'A'); fs.writeFileSync('out/b.txt', 'B');", {
    outputs: ["out/*.txt"],
  });
  await registerNodeScriptTool(url, "talker", "console.log('row', 1 + 1, 'of the cohort'); console.error('a', 'warning')");
  for (const [nodeId, outputs, logs] of [["out-auto", "auto", "stream"], ["out-review", "review", "stream"], ["out-local", "local", "stream"], ["out-quiet", "review", "system-only"]] as const) {
    const file = join(env.sandboxRoot, `${nodeId}-policy.yaml`);
    await writeFile(file, `allow: any\noutputs: ${outputs}\nlogs: ${logs}\n`);
    agents.set(nodeId, await env.startAgent(nodeId, { env: { FEM_POLICY_FILE: file } }));
  }
  researcherToken = await tokenOf("rita");
  await gqlOk(url, `mutation { addProjectMember(project: "test", subject: "rita", role: RESEARCHER) { subject } }`);
  for (const subject of ["otto", "olga"]) {
    await gqlOk(url, `mutation($s: String!) { grantRole(subject: $s, role: NODE_OPERATOR) { roles } }`, { s: subject });
    await gqlOk(url, `mutation($s: String!) { grantNodeOperator(nodeId: "out-review", subject: $s) { id } }`, { s: subject });
    operatorTokens[subject] = await tokenOf(subject);
  }
});

test.after(async () => env?.dispose());

async function tokenOf(subject: string): Promise<string> {
  return (await createApiToken(env.orchestrator.orm.em.fork(), { name: `${subject}-token`, ownerSubject: subject, roles: [] })).token;
}

/** Sets a tool's outputs behind the API's back, with the digest its new definition gives (so a node that pins by digest still runs it). */
async function escapeOutputs(name: string, outputs: string[]): Promise<void> {
  const [tool] = await env.sql<{ executable: string; args: never; env: Record<string, string>; launcher: string; image: string | null; result_file: string | null }>(
    `select executable, args, env, launcher, image, result_file from tool where name = ?`,
    [name],
  );
  const digest = toolDigest({ executable: tool.executable, args: tool.args, env: tool.env, launcher: tool.launcher, image: tool.image, resultFile: tool.result_file, outputs });
  await env.sql(`update tool set outputs = ?::jsonb, digest = ? where name = ?`, [JSON.stringify(outputs), digest, name]);
}

/** Runs `tool` on `nodeId` to its end; returns the run's id and outputs by path. */
async function runOutputs(nodeId: string, tool: string): Promise<{ runId: string; state: string; outputs: Record<string, ArtifactView> }> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: [nodeId] }] } });
  const run = (await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id)).tasks[0].runs[0];
  return { runId: run.id, state: run.state, outputs: await outputsOf(run.id) };
}

async function outputsOf(runId: string): Promise<Record<string, ArtifactView>> {
  const data = await gqlOk<{ run: { outputs: ArtifactView[] } }>(env.orchestrator.url, OUTPUTS, { id: runId });
  return Object.fromEntries(data.run.outputs.map((a) => [a.path, a]));
}

/** `fem-agent outputs …` on the node, as its operator would type it. */
async function femAgentOutputs(nodeId: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = promisify(execFile);
  const options = { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", FEM_SANDBOX_DIR: join(env.sandboxRoot, nodeId) }, timeout: 30_000 };
  return run(process.execPath, [AGENT_BIN, "outputs", ...args], options).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? 1, stdout: err.stdout ?? "", stderr: err.stderr ?? "" }),
  );
}

async function auditOf(artifactId: string): Promise<{ actor: string; action: string; details: Record<string, unknown> }[]> {
  const data = await gqlOk(env.orchestrator.url, `query($t: String!) { auditEvents(filter: { target: $t }) { nodes { actor action details } } }`, { t: `artifact:${artifactId}` });
  return data.auditEvents.nodes;
}

test("globs that leave the sandbox (../, an absolute path), a symbolic link to /etc/passwd and a file over the cap are refused with reasons", async () => {
  const { state, outputs } = await runOutputs("out-auto", "writer@1.0.0");
  assert.is(state, "SUCCEEDED");
  const refused = (path: string, reason: RegExp) => {
    const artifact = outputs[path];
    assert.ok(artifact, `${path} is listed: ${JSON.stringify(Object.keys(outputs))}`);
    assert.is(artifact.state, "FAILED", path);
    assert.match(artifact.reason ?? "", reason);
    assert.is(artifact.sha256, null, `${path} was never read`);
  };
  refused("../*", /'\.\.' leaves the run's sandbox/);
  refused("/etc/passwd", /absolute path leaves the run's sandbox/);
  refused("out/passwd", /symbolic link: only regular files are released/);
  refused("big.bin", new RegExp(`${MAX_ARTIFACT_BYTES + 1} bytes: over the ${MAX_ARTIFACT_BYTES}-byte limit`));
  assert.is(outputs["big.bin"].sizeBytes, MAX_ARTIFACT_BYTES + 1);
});

test("auto: the outputs of a run that succeeded are released at once (APPROVED, then sent), with their size and sha256", async () => {
  const { outputs } = await runOutputs("out-auto", "writer@1.0.0");
  const weights = outputs["out/sub/weights.bin"];
  assert.equal([released(weights.state), weights.releasePolicy, weights.sizeBytes, weights.sha256, weights.decidedBy], ["released", "AUTO", WEIGHTS.length, sha256(WEIGHTS), "policy:auto"]);
  assert.ok(weights.decidedAt);
  assert.equal([released(outputs["out/a.txt"].state), outputs["out/a.txt"].sha256, outputs["out/a.txt"].sizeBytes], ["released", sha256("alpha\n"), 6]);
});

test("review: PENDING_REVIEW; a RESEARCHER of the project sees but may not approve; the node's operator approves (audited), another rejects", async () => {
  const { runId, outputs } = await runOutputs("out-review", "report@1.0.0");
  const [a, b] = [outputs["out/a.txt"], outputs["out/b.txt"]];
  assert.equal([a.state, a.releasePolicy, b.state], ["PENDING_REVIEW", "REVIEW", "PENDING_REVIEW"]);
  const seen = await gqlOk(env.orchestrator.url, OUTPUTS, { id: runId }, { token: researcherToken });
  assert.is(seen.run.outputs.length, 2, "the project's researcher sees the outputs");
  expectError(await gql(env.orchestrator.url, DECIDE, { id: a.id, decision: "APPROVE" }, { token: researcherToken }), "FORBIDDEN", /NODE_OPERATOR of node out-review/);
  const approved = (await gqlOk(env.orchestrator.url, DECIDE, { id: a.id, decision: "APPROVE", comment: "aggregate only" }, { token: operatorTokens.otto })).decideArtifactRelease;
  assert.equal(approved, { id: a.id, state: "APPROVED", decidedBy: "otto", comment: "aggregate only" });
  const rejected = (await gqlOk(env.orchestrator.url, DECIDE, { id: b.id, decision: "REJECT", comment: "row-level data" }, { token: operatorTokens.olga })).decideArtifactRelease;
  assert.equal(rejected, { id: b.id, state: "REJECTED", decidedBy: "olga", comment: "row-level data" });
  expectError(await gql(env.orchestrator.url, DECIDE, { id: b.id, decision: "APPROVE" }, { token: operatorTokens.otto }), "CONFLICT", /REJECTED: only a PENDING_REVIEW artifact can be decided/);
  const audit = await auditOf(a.id);
  const decision = audit.find((e) => e.action === "artifact.decide");
  assert.ok(decision, JSON.stringify(audit));
  assert.is(decision.actor, "otto");
  assert.equal([decision.details.decision, decision.details.comment, decision.details.path, decision.details.via], ["APPROVE", "aggregate only", "out/a.txt", "api"]);
  assert.ok(audit.some((e) => e.action === "decideArtifactRelease" && e.actor === "otto"), "the mutation itself is recorded too");
});

test("runOutputsUpdated: a project reader follows the decisions and the approved file's transfer live, each change delivering the run's outputs whole", async () => {
  const { runId, outputs } = await runOutputs("out-review", "report@1.0.0");
  const [a, b] = [outputs["out/a.txt"], outputs["out/b.txt"]];
  const client = wsClient(env.orchestrator.wsUrl, { token: researcherToken });
  const live = collect<{ path: string; state: string; downloadUrl: string | null }[]>(client, `subscription($id: ID!) { runOutputsUpdated(runId: $id) { path state downloadUrl } }`, { id: runId }, "runOutputsUpdated");
  try {
    // The subscription listens once its read check is done; a decision before that would be missed.
    await env.orchestrator.pubsub.waitForSubscribers(topics.runOutputs(runId), 1, 10_000);
    await gqlOk(env.orchestrator.url, DECIDE, { id: b.id, decision: "REJECT" }, { token: operatorTokens.olga });
    await gqlOk(env.orchestrator.url, DECIDE, { id: a.id, decision: "APPROVE" }, { token: operatorTokens.otto });
    const stateOf = (list: { path: string; state: string }[], path: string) => list.find((o) => o.path === path)?.state;
    await live.waitFor((items) => items.some((list) => stateOf(list, "out/a.txt") === "AVAILABLE"), 30_000, "out/a.txt AVAILABLE, live");
    const states = live.items.map((list) => `${stateOf(list, "out/a.txt")}/${stateOf(list, "out/b.txt")}`);
    assert.is(states[0], "PENDING_REVIEW/REJECTED", `first change: the rejection (${states.join(", ")})`);
    assert.ok(states.includes("APPROVED/REJECTED"), `the approval is seen before the transfer: ${states.join(", ")}`);
    assert.is(states.at(-1), "AVAILABLE/REJECTED", states.join(", "));
    const stored = live.items.at(-1)!.find((o) => o.path === "out/a.txt")!;
    assert.is(stored.downloadUrl, `/artifacts/${a.id}`);
    assert.is(live.errors.length, 0);
  } finally {
    await live.dispose();
    await client.dispose();
  }
});

test("local: the API refuses every decision, even an ADMIN's; fem-agent outputs approve on the node releases the file, reported as the node and audited", async () => {
  const { runId, outputs } = await runOutputs("out-local", "report@1.0.0");
  const a = outputs["out/a.txt"];
  assert.equal([a.state, a.releasePolicy], ["PENDING_REVIEW", "LOCAL"]);
  expectError(await gql(env.orchestrator.url, DECIDE, { id: a.id, decision: "APPROVE" }), "FORBIDDEN", /only the node's operator at the node can decide/);
  const listed = await femAgentOutputs("out-local", ["list", runId]);
  assert.is(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`out/a\\.txt  1 bytes  sha256:${sha256("A")}  undecided`));
  const approve = await femAgentOutputs("out-local", ["approve", runId, "out/a.txt", "--comment", "checked at the node"]);
  assert.is(approve.code, 0, approve.stderr);
  assert.match(approve.stdout, /approved out\/a\.txt of run .*: recorded by the agent/);
  const released = await waitUntil(async () => {
    const now = (await outputsOf(runId))["out/a.txt"];
    return RELEASED.includes(now.state) ? now : undefined;
  }, 10_000, "the node's approval to reach the orchestrator");
  assert.match(released.decidedBy ?? "", /^node:out-local\/.+/);
  assert.is(released.comment, "checked at the node");
  assert.is((await outputsOf(runId))["out/b.txt"].state, "PENDING_REVIEW", "only the file named was decided");
  const audit = (await auditOf(a.id)).find((e) => e.action === "artifact.decide");
  assert.is(audit?.actor, "node:out-local");
  assert.equal([audit?.details.decision, audit?.details.via], ["APPROVE", "node"]);
});

test("local: a decision taken while the agent is down waits for it; unknown runs and files are refused by the command", async () => {
  const { runId } = await runOutputs("out-local", "report@1.0.0");
  const unknownFile = await femAgentOutputs("out-local", ["reject", runId, "out/c.txt"]);
  assert.is(unknownFile.code, 1);
  assert.match(unknownFile.stderr, /not a releasable output of run .*: out\/c\.txt/);
  const unknownRun = await femAgentOutputs("out-local", ["approve", "00000000-0000-4000-8000-000000000000"]);
  assert.match(unknownRun.stderr, /left no outputs in this node's journal/);
  await agents.get("out-local")!.stop();
  const reject = await femAgentOutputs("out-local", ["reject", runId, "--wait-ms", "300"]);
  assert.is(reject.code, 0, reject.stderr);
  assert.match(reject.stdout, /rejected out\/a\.txt, out\/b\.txt of run .*: queued/);
  assert.is((await outputsOf(runId))["out/b.txt"].state, "PENDING_REVIEW");
  agents.set("out-local", await env.startAgent("out-local", { env: { FEM_POLICY_FILE: join(env.sandboxRoot, "out-local-policy.yaml") } }));
  await waitUntil(async () => {
    const now = await outputsOf(runId);
    return now["out/a.txt"].state === "REJECTED" && now["out/b.txt"].state === "REJECTED";
  }, 15_000, "the queued rejection to reach the orchestrator");
});

test("a decision in another node's name about a run that is not its own is dead-lettered forged and changes nothing", async () => {
  const { runId } = await runOutputs("out-local", "report@1.0.0");
  const events = await createEventPublisher(await env.nodeAmqpUrl("out-review"));
  try {
    await events.publish({
      type: "run.outputs",
      v: 1,
      nodeId: "out-review",
      runId,
      attempt: 1,
      at: new Date().toISOString(),
      requestId: "00000000-0000-4000-8000-000000000001",
      decidedBy: "mallory",
      decisions: [{ path: "out/a.txt", decision: "APPROVE", comment: null }],
    });
  } finally {
    await events.close();
  }
  await waitUntil(async () => {
    const rows = await env.sql<{ reason: string }>(`select reason from dead_letter where routing_key = 'node.out-review.run.outputs'`);
    return rows.some((r) => r.reason === "forged");
  }, 10_000, "a forged dead letter");
  assert.is((await outputsOf(runId))["out/a.txt"].state, "PENDING_REVIEW");
});

test("logs: system-only keeps stdout and stderr on the node, listed with the outputs for review; only SYSTEM lines stream", async () => {
  const { runId, state, outputs } = await runOutputs("out-quiet", "talker@1.0.0");
  assert.is(state, "SUCCEEDED");
  const logs = await gqlOk(env.orchestrator.url, `query($id: ID!) { runLogs(runId: $id) { nodes { stream text } } }`, { id: runId });
  const lines: { stream: string; text: string }[] = logs.runLogs.nodes;
  assert.ok(lines.length > 0 && lines.every((l) => l.stream === "SYSTEM"), JSON.stringify(lines));
  // The argv (in the SYSTEM `starting:` line) is the orchestrator's own; what the run printed is not.
  assert.not.ok(JSON.stringify(lines).includes("row 2 of the cohort"), "stdout did not leave the node");
  assert.ok(lines.some((l) => /stdout and stderr stay on the node/.test(l.text)));
  const [stdout, stderr] = [outputs[".fem-logs/stdout.log"], outputs[".fem-logs/stderr.log"]];
  assert.equal([stdout.state, stdout.sha256, stdout.sizeBytes], ["PENDING_REVIEW", sha256("row 2 of the cohort\n"), 20]);
  assert.equal([stderr.state, stderr.sha256], ["PENDING_REVIEW", sha256("a warning\n")]);
});

test.run();
