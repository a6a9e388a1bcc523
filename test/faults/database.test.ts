import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gql, gqlOk } from "../support/graphql.js";
import { registerNodeScriptTool, SUBMIT, WORKFLOW } from "../support/fixtures.js";
import { sleep, waitUntil } from "../support/wait.js";

const run = promisify(execFile);
const test = suite("a database restart");
let env: TestEnv;

const cluster = () => readdirSync("/etc/postgresql")[0];
const pg = (action: "start" | "stop") =>
  run("pg_ctlcluster", ["--skip-systemctl-redirect", cluster(), "main", action, ...(action === "stop" ? ["-m", "fast"] : [])], { timeout: 60_000 });
const pgUp = async () => {
  await pg("start").catch(() => undefined);
  await waitUntil(async () => (await run("pg_isready", ["-h", "127.0.0.1", "-q"]).then(() => true, () => false)) || undefined, 60_000, "PostgreSQL to accept connections");
};

const TICKER = `const [marker, ms] = process.argv.slice(1); let i = 0; const t = setInterval(() => console.log(marker + ' tick ' + ++i), 50); setTimeout(() => { clearInterval(t); console.log('done'); }, Number(ms));`;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a"]);
  await env.startAgent("site-a");
  await registerNodeScriptTool(env.orchestrator.url, "ticker", TICKER);
});

test.after(async () => {
  await pgUp();
  await env?.dispose();
});

test("requests fail fast with UNAVAILABLE while PostgreSQL is down, nothing partial is stored, and node events wait instead of being dead-lettered", async () => {
  const marker = `fem-db-${randomBytes(3).toString("hex")}`;
  const running = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "ticker@1.0.0", nodes: ["site-a"], params: { value: marker, count: 4_000 } }] } });
  const id: string = running.submitWorkflow.id;
  await waitUntil(async () => (await gqlOk(env.orchestrator.url, WORKFLOW, { id })).workflow.state === "RUNNING", 15_000, "the run to start");
  const [before] = await env.sql<{ n: string }>(`select count(*) n from workflow`);
  await pg("stop");
  try {
    const started = Date.now();
    const read = await gql(env.orchestrator.url, `{ nodes { nodes { id } } }`);
    assert.is(read.errors?.[0].extensions?.code, "UNAVAILABLE", JSON.stringify(read));
    assert.match(read.errors![0].message, /database is unavailable/);
    assert.ok(Date.now() - started < 15_000, "it fails fast");
    const write = await gql(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "ticker@1.0.0", nodes: ["site-a"], params: { value: "x", count: 1 } }] } });
    assert.is(write.errors?.[0].extensions?.code, "UNAVAILABLE");
    await sleep(2_000);
  } finally {
    await pgUp();
  }
  await waitUntil(async () => (await gql(env.orchestrator.url, WORKFLOW, { id })).data?.workflow.state === "SUCCEEDED", 60_000, "the run to finish once the database is back");
  const [after] = await env.sql<{ n: string }>(`select count(*) n from workflow`);
  assert.is(after.n, before.n, "the refused submission stored nothing");
  const lines = await env.sql<{ seq: number; text: string }>(
    `select l.seq, l.text from log_line l join run r on r.id = l.run_id where r.workflow_id = ? order by l.seq`,
    [id],
  );
  assert.equal(lines.map((l) => l.seq), Array.from({ length: lines.length }, (_, i) => i + 1));
  assert.ok(lines.filter((l) => l.text.startsWith(`${marker} tick`)).length >= 60, "ticks printed during the outage were stored");
  const dead = await gqlOk(env.orchestrator.url, `{ deadLetters { nodes { id } } }`);
  assert.is(dead.deadLetters.nodes.length, 0, "no valid event was dead-lettered");
});

test.run();
