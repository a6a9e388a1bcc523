import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestVhost, type TestVhost } from "../support/broker.js";
import { adminDatabaseUrl } from "../support/database.js";
import { skipWithoutBubblewrap } from "../support/sandbox.js";

const run = promisify(execFile);
const DEMO = fileURLToPath(new URL("../../scripts/demo.js", import.meta.url));
const test = suite("npm run demo");
let vhost: TestVhost;
const databaseName = `fem_demo_test_${process.pid}`;

function databaseUrl(): string {
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${databaseName}`;
  return url.toString();
}

async function demo(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [DEMO], { env: { PATH: process.env.PATH ?? "", PORT: "0", ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

test.before(async () => {
  vhost = await createTestVhost("fem_demo");
});

test.after(async () => {
  await vhost?.drop();
  await run("psql", [adminDatabaseUrl(), "-c", `drop database if exists "${databaseName}" with (force)`]).catch(() => undefined);
});

const SUCCEEDED = [/accounting for local-stats@1\.0\.0: 2 runs, 2 succeeded/, /hospital-a\s+run\s+RUNNING/, /hospital-b\s+run\s+SUCCEEDED/, /hospital-a\s+STDOUT\s+hospital-a: value 5\/5 read/, /run usage:/, /federated mean over 8 values on 2 nodes: 5\.925/, /workflow SUCCEEDED/, /http:\/\/.*\/graphql/];

test("runs the federated workflow on two agents, each reading its dataset in the sandbox launcher, printing states, log lines and usage, and exits 0", async () => {
  const result = await demo({ DATABASE_URL: adminDatabaseUrl(), FEM_DEMO_DATABASE: databaseName, AMQP_URL: vhost.url });
  assert.is(result.code, 0, result.stdout + result.stderr);
  for (const pattern of SUCCEEDED) assert.match(result.stdout, pattern);
  if (skipWithoutBubblewrap()) return;
  assert.match(result.stdout, /tool registered: .*launcher: sandbox/);
  assert.match(result.stdout, /hospital-a\s+SYSTEM\s+starting: .* --site hospital-a .*\(sandbox launcher\)/);
  assert.not.match(result.stdout, /warning/);
});

test("falls back to the process launcher, with a one-line warning saying how to install bubblewrap, when bwrap does not run", async () => {
  // No PATH entry holds bwrap; node is started by its absolute path.
  const result = await demo({ DATABASE_URL: adminDatabaseUrl(), FEM_DEMO_DATABASE: databaseName, AMQP_URL: vhost.url, PATH: "/nonexistent" });
  assert.is(result.code, 0, result.stdout + result.stderr);
  for (const pattern of SUCCEEDED) assert.match(result.stdout, pattern);
  const warnings = result.stdout.split("\n").filter((line) => /warning/.test(line));
  assert.equal(warnings, ["warning: bubblewrap is not installed, so runs use the process launcher, which isolates nothing (apt-get install bubblewrap)"]);
  assert.match(result.stdout, /\(process launcher\)/);
});

test("says in one line how to start RabbitMQ when it is unreachable, and exits non-zero", async () => {
  const result = await demo({ DATABASE_URL: adminDatabaseUrl(), FEM_DEMO_DATABASE: databaseName, AMQP_URL: "amqp://guest:guest@127.0.0.1:1" });
  assert.is.not(result.code, 0);
  const lines = result.stderr.trim().split("\n");
  assert.is(lines.length, 1, result.stderr);
  assert.match(lines[0], /RabbitMQ is not reachable at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1.*rabbitmq-server -detached/);
});

test("says in one line how to start PostgreSQL when it is unreachable, and exits non-zero", async () => {
  const result = await demo({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/postgres", FEM_DEMO_DATABASE: databaseName, AMQP_URL: vhost.url });
  assert.is.not(result.code, 0);
  const lines = result.stderr.trim().split("\n");
  assert.is(lines.length, 1, result.stderr);
  assert.match(lines[0], /PostgreSQL is not reachable at postgres:\/\/postgres@127\.0\.0\.1:1\/.*pg_ctlcluster/);
});

async function orchestratorStart(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const main = fileURLToPath(new URL("../../src/main.js", import.meta.url));
  return run(process.execPath, [main], { env: { PATH: process.env.PATH ?? "", PORT: "0", ...env }, timeout: 60_000 }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code?: number; stderr?: string }) => ({ code: e.code ?? 1, stderr: e.stderr ?? "" }),
  );
}

for (const [service, env, pattern] of [
  ["RabbitMQ", { DATABASE_URL: databaseUrl(), AMQP_URL: "amqp://127.0.0.1:1" }, /RabbitMQ is not reachable .*rabbitmq-server -detached/],
  ["PostgreSQL", { DATABASE_URL: "postgres://postgres@127.0.0.1:1/fem" }, /PostgreSQL is not reachable .*pg_ctlcluster/],
] as const) {
  test(`the orchestrator says in one line how to start ${service} when it is unreachable, with no stack trace`, async () => {
    const result = await orchestratorStart(env);
    assert.is.not(result.code, 0);
    const lines = result.stderr.trim().split("\n").filter((l) => !l.startsWith("{"));
    assert.is(lines.length, 1, result.stderr);
    assert.match(lines[0], pattern);
    assert.not.match(result.stderr, /\n\s+at /);
  });
}

test.run();
