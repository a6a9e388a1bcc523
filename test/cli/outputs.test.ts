/**
 * `fem outputs ls|download` run as a subprocess against a real orchestrator and a real agent whose
 * policy releases outputs at once: the listing matches the API, a download is checked against the
 * server's digest and renamed into place, an interrupted download resumes from its partial file
 * with a Range request, and a corrupted partial file is refused and removed.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { finishedWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { gqlOk, TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { waitUntil } from "../support/wait.js";
import { fem } from "./fem.js";

const test = suite("fem outputs: list, download with checksum, resume");
const NODE = "out-auto";
const MIB = 1024 * 1024;
let env: TestEnv;
let dir: string;
let user: Record<string, string>;
let runId: string;
let taskId: string;
let weights: { id: string; sha256: string; sizeBytes: number };
let content: Buffer;

const OUTPUTS = `query($id: ID!) { run(id: $id) { outputs { id path sizeBytes sha256 state } } }`;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function ok(args: string[]): Promise<string> {
  const result = await fem(args, user, 60_000);
  assert.is(result.code, 0, `fem ${args.join(" ")}: ${result.stderr}\n${result.stdout}`);
  return result.stdout;
}

test.before(async () => {
  env = await createTestEnv();
  dir = await mkdtemp(join(tmpdir(), "fem-outputs-"));
  user = { HOME: dir, FEM_URL: env.orchestrator.url, FEM_TOKEN: TEST_ADMIN_TOKEN };
  await env.registerNodes([NODE]);
  const policy = join(env.sandboxRoot, "policy.yaml");
  await writeFile(policy, "allow: any\noutputs: auto\n");
  await env.startAgent(NODE, { env: { FEM_POLICY_FILE: policy } });
  const script = `const fs = require('fs'), c = require('crypto'); fs.writeFileSync('weights.bin', c.randomBytes(${3 * MIB})); fs.mkdirSync('report'); fs.writeFileSync('report/summary.txt', 'mean 5.9\\n');`;
  const tool = await registerNodeScriptTool(env.orchestrator.url, "trainer", script, { outputs: ["weights.bin", "report/*.txt"] });
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "train", tool, nodes: [NODE] }] } });
  const workflow = await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id, 60_000);
  assert.is(workflow.tasks[0]!.runs[0]!.state, "SUCCEEDED");
  runId = workflow.tasks[0]!.runs[0]!.id;
  taskId = workflow.tasks[0]!.id;
  const outputs = await waitUntil(async () => {
    const { run } = await gqlOk<{ run: { outputs: { id: string; path: string; sizeBytes: number; sha256: string; state: string }[] } }>(env.orchestrator.url, OUTPUTS, { id: runId });
    return run.outputs.length === 2 && run.outputs.every((a) => a.state === "AVAILABLE") ? run.outputs : undefined;
  }, 60_000, "both outputs AVAILABLE");
  weights = outputs.find((a) => a.path === "weights.bin")!;
});

test.after(async () => {
  await env?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("outputs ls lists a run's and a task's files with id, node, path, size, sha256 and state", async () => {
  const listed = JSON.parse(await ok(["outputs", "ls", runId, "--json"])) as { id: string; node: string; path: string; sizeBytes: number; sha256: string; state: string; runId: string }[];
  assert.equal(listed.map((a) => [a.path, a.node, a.state, a.runId]).sort(), [["report/summary.txt", NODE, "AVAILABLE", runId], ["weights.bin", NODE, "AVAILABLE", runId]]);
  const w = listed.find((a) => a.path === "weights.bin")!;
  assert.equal([w.id, w.sizeBytes, w.sha256], [weights.id, 3 * MIB, weights.sha256]);
  assert.equal(JSON.parse(await ok(["outputs", "ls", taskId, "--json"])), listed);
  const table = (await ok(["outputs", "ls", taskId])).split("\n");
  assert.match(table[0]!, /^ARTIFACT\s+NODE\s+PATH\s+SIZE\s+SHA256\s+STATE$/);
  assert.ok(table.some((l) => new RegExp(`^${weights.id}\\s+${NODE}\\s+weights\\.bin\\s+3\\.0 MiB\\s+${weights.sha256.slice(0, 16)}\\s+AVAILABLE$`).test(l)), table.join("\n"));

  const unknown = await fem(["outputs", "ls", "00000000-0000-4000-8000-000000000000"], user);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /^fem: NOT_FOUND: no run or task "00000000-0000-4000-8000-000000000000" that you may see\n$/);
});

test("outputs download RUN saves every file under its path, verified against the server's digest", async () => {
  const out = join(dir, "run");
  const stdout = await ok(["outputs", "download", runId, "--out", out]);
  content = await readFile(join(out, "weights.bin"));
  assert.is(sha256(content), weights.sha256);
  assert.is(await readFile(join(out, "report", "summary.txt"), "utf8"), "mean 5.9\n");
  assert.match(stdout, new RegExp(`saved .*run/weights\\.bin \\(3\\.0 MiB; sha256 ${weights.sha256} verified\\)`));
  assert.equal((await readdir(out)).sort(), ["report", "weights.bin"], "no partial file is left");
});

test("a download resumes from the partial file an interrupted one left, with a Range request", async () => {
  const out = join(dir, "resume");
  await mkdir(out);
  await writeFile(join(out, "weights.bin.part"), content.subarray(0, MIB + 123));
  const result = JSON.parse(await ok(["outputs", "download", weights.id, "--out", out, "--json"])) as { file: string; sizeBytes: number; sha256: string; resumedFromBytes: number }[];
  assert.is(result.length, 1);
  assert.equal([result[0]!.sizeBytes, result[0]!.sha256, result[0]!.resumedFromBytes], [3 * MIB, weights.sha256, MIB + 123]);
  assert.ok((await readFile(join(out, "weights.bin"))).equals(content));
  assert.equal(await readdir(out), ["weights.bin"]);
});

test("a corrupted partial file is detected: refused in one line, removed, and the next download is whole", async () => {
  const out = join(dir, "corrupt");
  const partial = Buffer.from(content.subarray(0, 2 * MIB));
  partial[1000] = partial[1000]! ^ 0xff;
  await mkdir(out);
  await writeFile(join(out, "weights.bin.part"), partial);
  const refused = await fem(["outputs", "download", weights.id, "--out", out], user, 60_000);
  assert.is(refused.code, 1, refused.stdout);
  assert.is(refused.stdout, "");
  const lines = refused.stderr.trim().split("\n");
  assert.is(lines.length, 1, refused.stderr);
  assert.match(lines[0]!, new RegExp(`^fem: CHECKSUM_MISMATCH: weights\\.bin: sha256 [0-9a-f]{64} does not match the server's Repr-Digest ${weights.sha256}; the partial download it resumed \\(${2 * MIB} bytes\\) was corrupt; removed .*weights\\.bin\\.part, run the command again$`));
  assert.is(await stat(join(out, "weights.bin")).catch(() => null), null, "nothing is saved");
  assert.is(await stat(join(out, "weights.bin.part")).catch(() => null), null, "the corrupt part is removed");

  await ok(["outputs", "download", weights.id, "--out", out]);
  assert.ok((await readFile(join(out, "weights.bin"))).equals(content));
});

test("a wrong token is refused in one line; an unknown id is NOT_FOUND", async () => {
  const wrong = await fem(["outputs", "download", weights.id, "--out", join(dir, "wrong")], { ...user, FEM_TOKEN: "fem_pat_wrong-0123456789abcdefghijklmnopqrstuvwxyz" });
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /^fem: UNAUTHENTICATED: .*\(the token from FEM_TOKEN was refused; run fem login again\)\n$/);
  const unknown = await fem(["outputs", "download", "00000000-0000-4000-8000-000000000000"], user);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /^fem: NOT_FOUND: no run or artifact "00000000-0000-4000-8000-000000000000" that you may see\n$/);
});

test.run();
