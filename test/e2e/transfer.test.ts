/**
 * Released outputs travel from real agents to the orchestrator over the broker in checked chunks,
 * and are downloaded over HTTP: under `auto` at once, under `review` only once approved (a rejected
 * file never crosses the broker), intact after a `kill -9` of the agent mid-transfer and after a
 * corrupted chunk; downloads are authorised like queries and resume with Range requests.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import amqp from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOrchestrator } from "../../src/app.js";
import { expireArtifacts } from "../../src/artifacts/index.js";
import { createApiToken } from "../../src/auth/index.js";
import { ChangeSet } from "../../src/kernel/index.js";
import { createLogger } from "../../src/logger.js";
import { EXCHANGES, nodeQueueNames, RUN_CHUNK_HEADER, TRANSFER_CHUNK_BYTES, type RunChunkEvent } from "../../src/messaging/contracts.js";
import { AGENT_BIN, type AgentProcess } from "../support/agent.js";
import { createEventPublisher } from "../support/amqp.js";
import { rabbitmqctl } from "../support/broker.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk, TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { finishedWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("transfer: released outputs reach the orchestrator in checked chunks and download over HTTP");
let env: TestEnv;
const agents = new Map<string, AgentProcess>();
let operatorToken: string;
let strangerToken: string;

const NODES = { a: "tr-auto-a", b: "tr-auto-b", review: "tr-review", crash: "tr-crash", local: "tr-local" } as const;
const POLICY: Record<string, string> = { [NODES.a]: "auto", [NODES.b]: "auto", [NODES.review]: "review", [NODES.crash]: "auto", [NODES.local]: "local" };
const OUTPUTS = `query($id: ID!) { run(id: $id) { state outputs { id path sizeBytes sha256 state downloadUrl checksumFailures reason } } }`;

interface ArtifactView {
  id: string;
  path: string;
  sizeBytes: number;
  sha256: string;
  state: string;
  downloadUrl: string | null;
  checksumFailures: number;
  reason: string | null;
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Writes `count` MiB of random bytes to each file named. */
const writerScript = (files: Record<string, number>) =>
  `const fs = require('fs'), c = require('crypto'); ${Object.entries(files)
    .map(([name, mib]) => `{ const f = fs.openSync(${JSON.stringify(name)}, 'w'); for (let i = 0; i < ${mib}; i++) fs.writeSync(f, c.randomBytes(1048576)); fs.closeSync(f); }`)
    .join(" ")}`;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(Object.values(NODES));
  const url = env.orchestrator.url;
  await registerNodeScriptTool(url, "trainer", writerScript({ "weights.bin": 3 }), { outputs: ["weights.bin"] });
  await registerNodeScriptTool(url, "reporter", writerScript({ "keep.bin": 1, "secret.bin": 1 }), { outputs: ["*.bin"] });
  await registerNodeScriptTool(url, "big", writerScript({ "big.bin": 96 }), { outputs: ["big.bin"] });
  for (const nodeId of Object.values(NODES)) agents.set(nodeId, await startAgent(nodeId));
  await gqlOk(url, `mutation { grantRole(subject: "otto", role: NODE_OPERATOR) { roles } }`);
  await gqlOk(url, `mutation($n: ID!) { grantNodeOperator(nodeId: $n, subject: "otto") { id } }`, { n: NODES.review });
  operatorToken = (await createApiToken(env.orchestrator.orm.em.fork(), { name: "otto", ownerSubject: "otto", roles: [] })).token;
  strangerToken = (await createApiToken(env.orchestrator.orm.em.fork(), { name: "eve", ownerSubject: "eve", roles: [] })).token;
});

test.after(async () => env?.dispose());

async function startAgent(nodeId: string): Promise<AgentProcess> {
  const file = join(env.sandboxRoot, `${nodeId}-policy.yaml`);
  await writeFile(file, `allow: any\noutputs: ${POLICY[nodeId]}\n`);
  const agent = await env.startAgent(nodeId, { env: { FEM_POLICY_FILE: file } });
  agents.set(nodeId, agent);
  return agent;
}

async function submit(tool: string, nodes: string[]): Promise<string[]> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes }] } });
  const workflow = await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id, 60_000);
  for (const run of workflow.tasks[0].runs) assert.is(run.state, "SUCCEEDED");
  return workflow.tasks[0].runs.map((r) => r.id);
}

async function outputsOf(runId: string): Promise<Record<string, ArtifactView>> {
  const data = await gqlOk<{ run: { outputs: ArtifactView[] } }>(env.orchestrator.url, OUTPUTS, { id: runId });
  return Object.fromEntries(data.run.outputs.map((a) => [a.path, a]));
}

async function availableOutput(runId: string, path: string, timeoutMs = 30_000): Promise<ArtifactView> {
  return waitUntil(async () => {
    const artifact = (await outputsOf(runId))[path];
    assert.not.ok(artifact.state === "FAILED", `${path} failed: ${artifact.reason}`);
    return artifact.state === "AVAILABLE" ? artifact : undefined;
  }, timeoutMs, `${path} of run ${runId} to be AVAILABLE`);
}

async function download(path: string, headers: Record<string, string> = {}, token: string | null = TEST_ADMIN_TOKEN): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const response = await fetch(new URL(path, env.orchestrator.url), {
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** A queue bound to every node event, as guest: what crossed the broker. */
async function tapNodeEvents(): Promise<{ chunks: { path: string; runId: string }[]; close(): Promise<void> }> {
  const connection = await amqp.connect(env.vhost.url);
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, EXCHANGES.nodeEvents, "#");
  const chunks: { path: string; runId: string }[] = [];
  await channel.consume(
    queue,
    (message) => {
      if (!message || !message.fields.routingKey.endsWith(".run.chunk.bytes")) return;
      const event = JSON.parse(String(message.properties.headers?.[RUN_CHUNK_HEADER])) as { path: string; runId: string };
      chunks.push({ path: event.path, runId: event.runId });
    },
    { noAck: true },
  );
  return {
    chunks,
    async close() {
      await channel.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}

/** Submits the 96 MiB `big` run on the crash node; resolves with its run id once `chunks` of its file are staged. */
async function bigTransferUnderWay(chunks: number): Promise<string> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "big@1.0.0", nodes: [NODES.crash] }] } });
  const runId: string = data.submitWorkflow.tasks[0].runs[0].id;
  await waitUntil(async () => {
    const [row] = await env.sql<{ id: string }>(`select id from artifact where run_id = ?`, [runId]);
    return row && (await env.orchestrator.artifactStore.stagedChunks(row.id, TRANSFER_CHUNK_BYTES)).size >= chunks;
  }, 60_000, `${chunks} chunks to arrive`, 10);
  return runId;
}

test("auto: each of two nodes' weights arrives AVAILABLE with its sha256, and downloads whole and resumed with Range, with the right digest", async () => {
  const runIds = await submit("trainer@1.0.0", [NODES.a, NODES.b]);
  assert.is(runIds.length, 2);
  const digests = new Set<string>();
  for (const runId of runIds) {
    const artifact = await availableOutput(runId, "weights.bin");
    assert.is(artifact.sizeBytes, 3 * 1024 * 1024);
    assert.is(artifact.downloadUrl, `/artifacts/${artifact.id}`);
    const whole = await download(artifact.downloadUrl!);
    assert.is(whole.status, 200);
    assert.is(whole.headers.get("content-length"), String(artifact.sizeBytes));
    assert.is(sha256(whole.body), artifact.sha256, "the file arrived intact");
    assert.is(whole.headers.get("repr-digest"), `sha-256=:${Buffer.from(artifact.sha256, "hex").toString("base64")}:`);
    assert.is(whole.headers.get("accept-ranges"), "bytes");
    const etag = whole.headers.get("etag")!;
    assert.ok(etag.includes(artifact.sha256));
    // An interrupted download resumes where it stopped.
    const cut = 1_000_003;
    const first = await download(artifact.downloadUrl!, { range: `bytes=0-${cut - 1}` });
    assert.is(first.status, 206);
    assert.is(first.headers.get("content-range"), `bytes 0-${cut - 1}/${artifact.sizeBytes}`);
    const rest = await download(artifact.downloadUrl!, { range: `bytes=${cut}-`, "if-range": etag });
    assert.is(rest.status, 206);
    assert.is(rest.headers.get("content-length"), String(artifact.sizeBytes - cut));
    assert.is(sha256(Buffer.concat([first.body, rest.body])), artifact.sha256);
    const unsatisfiable = await download(artifact.downloadUrl!, { range: `bytes=${artifact.sizeBytes}-` });
    assert.is(unsatisfiable.status, 416);
    assert.is(unsatisfiable.headers.get("content-range"), `bytes */${artifact.sizeBytes}`);
    digests.add(artifact.sha256);
    const [row] = await env.sql<{ checksum_failures: number }>(`select checksum_failures from artifact where id = ?`, [artifact.id]);
    assert.is(row.checksum_failures, 0);
  }
  assert.is(digests.size, 2, "each node sent its own file");
  const accounting = await gqlOk(env.orchestrator.url, `query($n: [ID!]) { accounting(groupBy: [NODE], filter: { nodes: $n }) { node releasedBytes } }`, { n: [NODES.a, NODES.b] });
  assert.equal(accounting.accounting, [{ node: NODES.a, releasedBytes: 3 * 1024 * 1024 }, { node: NODES.b, releasedBytes: 3 * 1024 * 1024 }], "the released bytes count in accounting");
});

test("downloads: another project's user gets 404 NOT_FOUND, an anonymous caller 401, an unknown id 404", async () => {
  const [runId] = await submit("trainer@1.0.0", [NODES.a]);
  const artifact = await availableOutput(runId, "weights.bin");
  const stranger = await download(artifact.downloadUrl!, {}, strangerToken);
  assert.is(stranger.status, 404);
  assert.is(JSON.parse(stranger.body.toString()).errors[0].extensions.code, "NOT_FOUND");
  const anonymous = await download(artifact.downloadUrl!, {}, null);
  assert.is(anonymous.status, 401);
  assert.is(JSON.parse(anonymous.body.toString()).errors[0].extensions.code, "UNAUTHENTICATED");
  await waitUntil(async () => {
    const data = await gqlOk(env.orchestrator.url, `{ auditEvents(filter: { action: "auth.denied" }) { nodes { actor outcome details } } }`);
    return data.auditEvents.nodes.some((e: { details: { path?: string } }) => e.details.path === "/artifacts/") || undefined;
  }, 10_000, "the refused download in the audit log");
  assert.is((await download("/artifacts/00000000-0000-4000-8000-000000000000")).status, 404);
  assert.is((await download("/artifacts/not-an-id")).status, 404);
});

test("retention: a stored file past FEM_ARTIFACT_RETENTION_MS is deleted and its artifact EXPIRED; its download is then 404", async () => {
  const [runId] = await submit("trainer@1.0.0", [NODES.b]);
  const artifact = await availableOutput(runId, "weights.bin");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok((await expireArtifacts(env.orchestrator.orm.em.fork(), env.orchestrator.artifactStore, 10, new ChangeSet())) >= 1);
  const expired = (await outputsOf(runId))["weights.bin"];
  assert.equal([expired.state, expired.downloadUrl], ["EXPIRED", null]);
  assert.is(await env.orchestrator.artifactStore.open(artifact.id), null, "the file is gone from the store");
  assert.is((await download(artifact.downloadUrl!)).status, 404);
});

test("review: nothing leaves before the operator approves; the approved file arrives, the rejected one never crosses the broker", async () => {
  const tap = await tapNodeEvents();
  try {
    const [runId] = await submit("reporter@1.0.0", [NODES.review]);
    const before = await outputsOf(runId);
    assert.equal([before["keep.bin"].state, before["secret.bin"].state, before["keep.bin"].downloadUrl], ["PENDING_REVIEW", "PENDING_REVIEW", null]);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(tap.chunks, [], "no chunk before a decision");
    const decide = `mutation($id: ID!, $d: ArtifactDecision!) { decideArtifactRelease(id: $id, decision: $d) { state } }`;
    await gqlOk(env.orchestrator.url, decide, { id: before["secret.bin"].id, d: "REJECT" }, { token: operatorToken });
    await gqlOk(env.orchestrator.url, decide, { id: before["keep.bin"].id, d: "APPROVE" }, { token: operatorToken });
    const kept = await availableOutput(runId, "keep.bin");
    assert.is(sha256((await download(kept.downloadUrl!)).body), kept.sha256);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const ofRun = tap.chunks.filter((c) => c.runId === runId);
    assert.ok(ofRun.length >= 4, `the approved file's chunks crossed: ${ofRun.length}`);
    assert.equal(ofRun.filter((c) => c.path !== "keep.bin"), [], "no chunk of the rejected file crossed the broker");
    assert.is((await outputsOf(runId))["secret.bin"].state, "REJECTED");
  } finally {
    await tap.close();
  }
});

test("local: a run.release from the orchestrator sends nothing; the operator's approval on the node sends the file, and only it", async () => {
  const tap = await tapNodeEvents();
  try {
    const [runId] = await submit("reporter@1.0.0", [NODES.local]);
    const keep = (await outputsOf(runId))["keep.bin"];
    assert.is(keep.state, "PENDING_REVIEW");
    // What a subverted orchestrator could do: queue a signed release of a file the node keeps for its operator.
    const release = { type: "run.release", v: 1, runId, attempt: 1, nodeId: NODES.local, files: [{ path: "keep.bin", sha256: keep.sha256, chunks: null }] };
    await env.sql(`insert into outbox (message_id, exchange, routing_key, payload, created_at, attempts) values (gen_random_uuid(), ?, ?, ?::jsonb, now(), 0)`, [
      EXCHANGES.dispatch,
      `${NODES.local}.control`,
      JSON.stringify(release),
    ]);
    const agent = agents.get(NODES.local)!;
    await waitUntil(() => /keep\.bin, which is not released on this node \(outputs: local\); not sent/.test(agent.output()) || undefined, 15_000, "the agent to refuse the release");
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(tap.chunks.filter((c) => c.runId === runId), [], "the orchestrator's release moved nothing");
    const approve = await promisify(execFile)(process.execPath, [AGENT_BIN, "outputs", "approve", runId, "keep.bin"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", FEM_SANDBOX_DIR: join(env.sandboxRoot, NODES.local) },
      timeout: 30_000,
    });
    assert.match(approve.stdout, /approved keep\.bin/);
    const artifact = await availableOutput(runId, "keep.bin");
    assert.is(sha256((await download(artifact.downloadUrl!)).body), keep.sha256);
    const ofRun = tap.chunks.filter((c) => c.runId === runId);
    assert.ok(ofRun.length >= 4 && ofRun.every((c) => c.path === "keep.bin"), JSON.stringify(ofRun.slice(0, 5)));
    assert.is((await outputsOf(runId))["secret.bin"].state, "PENDING_REVIEW");
  } finally {
    await tap.close();
  }
});

test("a release lost on its way (the node's control queue purged) is sent again by the transfer watch, and the file arrives", async () => {
  const [runId] = await submit("reporter@1.0.0", [NODES.review]);
  const keep = (await outputsOf(runId))["keep.bin"];
  await agents.get(NODES.review)!.stop();
  await gqlOk(env.orchestrator.url, `mutation($id: ID!) { decideArtifactRelease(id: $id, decision: APPROVE) { state } }`, { id: keep.id }, { token: operatorToken });
  const connection = await amqp.connect(env.vhost.url);
  try {
    const channel = await connection.createChannel();
    const control = nodeQueueNames(NODES.review).control;
    await waitUntil(async () => (await channel.checkQueue(control)).messageCount > 0 || undefined, 10_000, "the release to reach the node's queue");
    await channel.purgeQueue(control);
  } finally {
    await connection.close();
  }
  await startAgent(NODES.review);
  // FEM_TRANSFER_STALL_MS is 3 s in the tests: the watch asks the (online) node again.
  const artifact = await availableOutput(runId, "keep.bin", 30_000);
  assert.is(sha256((await download(artifact.downloadUrl!)).body), keep.sha256);
});

test("agent kill -9 mid-transfer, then a restart: the file arrives once, intact, the transfer resumed", async () => {
  const agent = agents.get(NODES.crash)!;
  // Past the first progress entries of the journal (every 16 chunks), well before the last of 384 chunks.
  const runId = await bigTransferUnderWay(40);
  await agent.kill9();
  assert.is.not((await outputsOf(runId))["big.bin"].state, "AVAILABLE", "killed before the last chunk");
  const restarted = await startAgent(NODES.crash);
  const artifact = await availableOutput(runId, "big.bin", 60_000);
  assert.match(restarted.output(), /sending output big\.bin \(100663296 bytes, 384 chunk\(s\), from chunk (\d+)\)/, "resumed from the journal");
  const body = (await download(artifact.downloadUrl!)).body;
  assert.is(body.length, 96 * 1024 * 1024);
  assert.is(sha256(body), artifact.sha256);
  const rows = await env.sql<{ state: string; checksum_failures: number }>(`select state, checksum_failures from artifact where run_id = ?`, [runId]);
  assert.equal(rows, [{ state: "AVAILABLE", checksum_failures: 0 }]);
});

test("an orchestrator restart mid-transfer: chunks wait in their queue, staged ones on disk; the file arrives once, intact", async () => {
  const runId = await bigTransferUnderWay(20);
  await env.orchestrator.stop();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  env.orchestrator = await createOrchestrator(env.config, createLogger("silent"));
  const artifact = await availableOutput(runId, "big.bin", 60_000);
  assert.is(sha256((await download(artifact.downloadUrl!)).body), artifact.sha256);
  assert.is(artifact.checksumFailures, 0);
});

test("every connection of the suite's vhost closed mid-transfer (as a broker restart does): agent and orchestrator reconnect; the file arrives once, intact", async () => {
  const runId = await bigTransferUnderWay(20);
  // Only this suite's vhost: the machine's RabbitMQ keeps running for everyone else.
  await rabbitmqctl("close_all_connections", "--vhost", env.vhost.name, "transfer test: broker blip");
  const artifact = await availableOutput(runId, "big.bin", 90_000);
  assert.is(sha256((await download(artifact.downloadUrl!)).body), artifact.sha256);
  assert.is(artifact.checksumFailures, 0);
});

test("a corrupted chunk is detected and asked for again; a forged one that passes its own checksum fails the file's, which is sent again; the file ends intact", async () => {
  const [runId] = await submit("reporter@1.0.0", [NODES.review]);
  const keep = (await outputsOf(runId))["keep.bin"];
  // The node is down when the approval is sent: the forged chunks are in before the genuine ones.
  await agents.get(NODES.review)!.stop();
  await gqlOk(env.orchestrator.url, `mutation($id: ID!) { decideArtifactRelease(id: $id, decision: APPROVE) { state } }`, { id: keep.id }, { token: operatorToken });
  const events = await createEventPublisher(await env.nodeAmqpUrl(NODES.review));
  const altered = Buffer.alloc(TRANSFER_CHUNK_BYTES, 7);
  const chunk = (index: number, data: Buffer, digest: string): RunChunkEvent => ({
    type: "run.chunk",
    v: 1,
    nodeId: NODES.review,
    runId,
    attempt: 1,
    path: "keep.bin",
    fileSha256: keep.sha256,
    index,
    chunkBytes: TRANSFER_CHUNK_BYTES,
    sha256: digest,
    data,
  });
  try {
    await events.publishChunk(chunk(0, altered, sha256(altered)));
    await events.publishChunk(chunk(1, altered, "0".repeat(64)));
  } finally {
    await events.close();
  }
  await waitUntil(async () => {
    const [row] = await env.sql<{ state: string }>(`select state from artifact where id = ?`, [keep.id]);
    return row.state === "TRANSFERRING" || undefined;
  }, 10_000, "the forged chunk to be staged");
  await startAgent(NODES.review);
  const artifact = await availableOutput(runId, "keep.bin", 60_000);
  assert.is(artifact.checksumFailures, 1, "the forged chunk failed the file's checksum once");
  assert.is(sha256((await download(artifact.downloadUrl!)).body), keep.sha256);
});

test.run();
