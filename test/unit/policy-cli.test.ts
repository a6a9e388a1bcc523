import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { runPolicyCommand } from "../../src/agent/policy-cli.js";
import { toolDefinition, toolDigest } from "../../src/shared/index.js";

const test = suite("fem-agent policy: the y/N question and a definition that does not give its digest");
const definition = toolDefinition({ executable: "/opt/fem/stats", env: { DSN: "x:${secret:PW}" } });
let stated = toolDigest(definition);
let server: http.Server;
let url: string;
let dir: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "fem-policy-cli-"));
  server = http.createServer((req, res) => {
    req.resume().on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ data: { tool: { name: "stats", version: "1", digest: stated, definition, env: { DSN: "***" } } } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
});

test.after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** Runs `policy add stats@1` with `answer` typed on a terminal. */
async function addWithAnswer(policyFile: string, answer: string): Promise<{ code: number; out: string; err: string }> {
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (out.includes("[y/N]")) stdin.write(`${answer}\n`);
  });
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await runPolicyCommand(["add", "stats@1"], { env: { FEM_ORCHESTRATOR_URL: url, FEM_API_TOKEN: "fem_pat_x", FEM_POLICY_FILE: policyFile }, stdin, stdout, stderr });
  return { code, out, err };
}

test("on a terminal it asks, and pins only on yes", async () => {
  const file = join(dir, "asked.yaml");
  await writeFile(file, "tools: []\n");
  const no = await addWithAnswer(file, "");
  assert.is(no.code, 1);
  assert.match(no.out, /Pin stats@1 with digest sha256:[0-9a-f]{64} in .*asked\.yaml\? \[y\/N\] /);
  assert.match(no.out, /DSN=x:\$\{secret:PW\}\n/);
  assert.is(no.err, "not pinned\n");
  assert.is(await readFile(file, "utf8"), "tools: []\n");
  const yes = await addWithAnswer(file, "y");
  assert.is(yes.code, 0, yes.err);
  assert.match(await readFile(file, "utf8"), new RegExp(`- name: stats\\n {4}version: "1"\\n {4}digest: ${stated}\\n`));
});

test("a digest the definition does not give is refused, and nothing is asked or written", async () => {
  stated = `sha256:${"f".repeat(64)}`;
  const file = join(dir, "lied.yaml");
  const result = await addWithAnswer(file, "y");
  assert.is(result.code, 1);
  assert.match(result.err, /the orchestrator's definition of stats@1 gives the digest sha256:[0-9a-f]{64}, not the sha256:f{64} it states: not pinned/);
  assert.not.match(result.out, /\[y\/N\]/);
  await readFile(file).then(
    () => assert.unreachable("no file was written"),
    () => undefined,
  );
});

test.run();
