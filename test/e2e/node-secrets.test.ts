import { createHash, randomBytes } from "node:crypto";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import amqp from "amqplib";
import { suite } from "uvu";
import { withoutUser } from "../support/broker.js";
import * as assert from "uvu/assert";
import { EXCHANGES } from "../../src/messaging/contracts.js";
import { AGENT_BIN } from "../support/agent.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { expectError, gql, gqlOk } from "../support/graphql.js";
import { REGISTER_TOOL, registerNodeScriptTool, type RunView } from "../support/fixtures.js";
import { assertRefused, registerNode, runOn } from "../support/node-runs.js";
import { runScript } from "../support/script.js";

const test = suite("node-local secrets");
let env: TestEnv;
/** Random, so that finding it anywhere can only mean it leaked. */
const SECRET = `pw-${randomBytes(16).toString("hex")}`;
const MARKER = `agent-only-${randomBytes(8).toString("hex")}`;
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** Reports hashes of what it received (never the values) and the names of its whole environment. */
const REPORT_ENV = `
const { createHash } = require("node:crypto");
const h = (t) => createHash("sha256").update(t ?? "").digest("hex");
require("node:fs").writeFileSync("result.json", JSON.stringify({ password: h(process.env.DB_PASSWORD), dsn: h(process.env.DSN), envKeys: Object.keys(process.env).sort() }));
console.log("reported");`;

/** Copies of everything published for the node (dispatches, control, its events) and every dead letter. */
interface Capture {
  bodies(): string[];
  close(): Promise<void>;
}

async function captureBrokerTraffic(nodeId: string): Promise<Capture> {
  const connection = await amqp.connect(env.vhost.url);
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, EXCHANGES.dispatch, `${nodeId}.run`);
  await channel.bindQueue(queue, EXCHANGES.dispatch, `${nodeId}.control`);
  await channel.bindQueue(queue, EXCHANGES.nodeEvents, `node.${nodeId}.#`);
  await channel.bindQueue(queue, EXCHANGES.deadLetter, "#");
  const bodies: string[] = [];
  await channel.consume(queue, (message) => message && bodies.push(message.content.toString("utf8")), { noAck: true });
  return { bodies: () => bodies, close: () => connection.close() };
}

/** The text of every row of every table of the suite's database. */
async function databaseText(): Promise<string> {
  const tables = await env.sql<{ schema: string; name: string }>(
    `select table_schema as schema, table_name as name from information_schema.tables where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`,
  );
  assert.ok(tables.some((t) => t.name === "outbox") && tables.some((t) => t.name === "dead_letter") && tables.some((t) => t.name === "log_line"), "the dump covers the outbox, dead letters and logs");
  const parts: string[] = [];
  for (const t of tables) {
    const rows = await env.sql<{ row: string }>(`select t::text as row from "${t.schema}"."${t.name}" t`);
    parts.push(...rows.map((r) => r.row));
  }
  return parts.join("\n");
}

async function writeSecrets(name: string, text: string, mode: number): Promise<string> {
  const file = join(env.sandboxRoot, name);
  await writeFile(file, text);
  await chmod(file, mode);
  return file;
}

test.before(async () => {
  env = await createTestEnv();
  await registerNodeScriptTool(env.orchestrator.url, "uses-secret", REPORT_ENV, {
    env: { DB_PASSWORD: "${secret:DB_PASSWORD}", DSN: "postgres://fem:${secret:DB_PASSWORD}@db.local/cohort", GREETING: "hello" },
    resultFile: "result.json",
  });
  await registerNodeScriptTool(env.orchestrator.url, "needs-missing", "console.log('ran')", { env: { TOKEN: "${secret:NOT_ON_THIS_NODE}" } });
});

test.after(async () => env?.dispose());

test("a node-local secret reaches the process, which sees nothing of the agent's environment", async () => {
  const secrets = await writeSecrets("sec-1.yaml", `# node-local\nDB_PASSWORD: "${SECRET}"\nUNUSED: other\n`, 0o600);
  await registerNode(env, "sec-1");
  const capture = await captureBrokerTraffic("sec-1");
  let run: RunView;
  const agent = await env.startAgent("sec-1", { env: { FEM_SECRETS_FILE: secrets, FEM_TEST_AGENT_MARKER: MARKER } });
  try {
    run = await runOn(env, "sec-1", "uses-secret@1.0.0");
  } finally {
    await agent.stop();
    await capture.close();
  }
  assert.is(run.state, "SUCCEEDED", run.message ?? "");
  assert.equal(run.result, {
    password: sha256(SECRET),
    dsn: sha256(`postgres://fem:${SECRET}@db.local/cohort`),
    envKeys: ["DB_PASSWORD", "DSN", "GREETING"],
  }, "the values arrived, and nothing of the agent's environment (PATH, AMQP_URL, the marker) did");

  const database = await databaseText();
  assert.ok(database.includes("${secret:DB_PASSWORD}"), "the orchestrator stores the reference");
  assert.not.ok(database.includes(SECRET), "the value is nowhere in PostgreSQL: runs, outbox, logs, dead letters, audit");
  const outbox = await env.sql<{ payload: string }>(`select payload::text from outbox where routing_key = 'sec-1.run'`);
  assert.is(outbox.length, 1);
  assert.ok(outbox[0].payload.includes("postgres://fem:${secret:DB_PASSWORD}@db.local/cohort"), "the outbox row, which is what is published, holds the reference");
  const bodies = capture.bodies();
  assert.ok(bodies.some((b) => b.includes('"type":"run.dispatch"')) && bodies.some((b) => b.includes('"state":"SUCCEEDED"')), `captured the dispatch and the node's events (${bodies.length})`);
  assert.not.ok(bodies.some((b) => b.includes(SECRET)), "no message on the broker carries the value");
  assert.not.ok(agent.output().includes(SECRET), "the agent never logs it");
  assert.not.ok((await readFile(join(env.sandboxRoot, "sec-1", "journal.jsonl"), "utf8")).includes(SECRET), "nor journals it");
});

test("a dispatch referencing a secret the node does not hold is refused naming it, and nothing runs", async () => {
  const secrets = await writeSecrets("sec-2.yaml", `DB_PASSWORD: "${SECRET}"\n`, 0o400);
  await registerNode(env, "sec-2");
  await env.startAgent("sec-2", { env: { FEM_SECRETS_FILE: secrets } });
  assertRefused(env, await runOn(env, "sec-2", "needs-missing@1.0.0"), "sec-2", /tool needs-missing@1\.0\.0: the tool's env references the secret NOT_ON_THIS_NODE, which this node does not hold \(FEM_SECRETS_FILE\)/);
  const noFile = "sec-3";
  await registerNode(env, noFile);
  await env.startAgent(noFile);
  assertRefused(env, await runOn(env, noFile, "uses-secret@1.0.0"), noFile, /references the secret DB_PASSWORD, which this node does not hold/);
});

test("a pinned tool cannot be pointed at a secret by registering it again with the same definition", async () => {
  const script = "console.log('greeting: ' + process.env.GREETING)";
  await registerNodeScriptTool(env.orchestrator.url, "greeter", script, { env: { GREETING: "hello" } });
  const { tool } = await gqlOk(env.orchestrator.url, `{ tool(id: "greeter@1.0.0") { digest } }`);
  const policy = join(env.sandboxRoot, "sec-4-policy.yaml");
  await writeFile(policy, `tools:\n  - name: greeter\n    digests: ["${tool.digest}"]\n`);
  const secrets = await writeSecrets("sec-4.yaml", `DB_PASSWORD: "${SECRET}"\n`, 0o600);
  await registerNode(env, "sec-4");
  await env.startAgent("sec-4", { env: { FEM_SECRETS_FILE: secrets, FEM_POLICY_FILE: policy } });
  assert.is((await runOn(env, "sec-4", "greeter@1.0.0")).state, "SUCCEEDED");
  const { registerTool } = await gqlOk(env.orchestrator.url, `mutation($input: RegisterToolInput!) { registerTool(input: $input) { digest } }`, {
    input: { name: "greeter", version: "2.0.0", executable: process.execPath, args: [{ id: "script", type: "STRING", position: 0, prefix: "-e", default: script }], env: { GREETING: "${secret:DB_PASSWORD}" } },
  });
  assert.is.not(registerTool.digest, tool.digest, "a secret reference is part of the digest");
  assertRefused(env, await runOn(env, "sec-4", "greeter@2.0.0"), "sec-4", /tool greeter@2\.0\.0 with digest sha256:[0-9a-f]{64} is not pinned/);
});

test("an agent whose secrets file is open to others, or unparsable, refuses to start with one line that quotes nothing of it", async () => {
  const agentEnv = (file: string) => ({
    AMQP_URL: withoutUser(env.vhost.url),
    FEM_NODE_CREDENTIAL: "fem_node_not-needed-the-secrets-file-is-read-first",
    FEM_NODE_ID: "sec-5",
    FEM_SANDBOX_DIR: join(env.sandboxRoot, "sec-5"),
    FEM_ALLOW_UNSIGNED: "true",
    FEM_SECRETS_FILE: file,
  });
  const open = await writeSecrets("open.yaml", `DB_PASSWORD: "${SECRET}"\n`, 0o644);
  const refused = await runScript(AGENT_BIN, [], agentEnv(open), 20_000);
  assert.is(refused.code, 1);
  assert.is(refused.stdout, "");
  assert.is(refused.stderr, `fem-agent: cannot start: FEM_SECRETS_FILE ${open} is open to group or others (mode 0644); make it readable by the agent's user only: chmod 600 ${open}\n`);
  const broken = await writeSecrets("broken.yaml", `DB_PASSWORD: "${SECRET}\n  API: [${SECRET}`, 0o600);
  const unparsable = await runScript(AGENT_BIN, [], agentEnv(broken), 20_000);
  assert.is(unparsable.code, 1);
  assert.match(unparsable.stderr, /^fem-agent: cannot start: FEM_SECRETS_FILE .* cannot be parsed as YAML or JSON \([A-Z_]+ at line \d+, column \d+\)\n$/);
  assert.not.ok(unparsable.stderr.includes(SECRET));
});

test("registration refuses a malformed secret reference", async () => {
  const answer = await gql(env.orchestrator.url, REGISTER_TOOL, { input: { name: "bad-ref", version: "1", executable: "/bin/true", env: { X: "${secret:db-password}" } } });
  expectError(answer, "BAD_USER_INPUT", /"db-password", which is not a valid name/);
});

test.run();
