import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AGENT_BIN } from "../support/agent.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { registerNodeScriptTool } from "../support/fixtures.js";
import { gqlOk, TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { assertRefused, registerNode, runOn } from "../support/node-runs.js";
import { runScript, type ScriptResult } from "../support/script.js";

const test = suite("fem-agent policy add");
let env: TestEnv;
let tokenFile: string;
let policyFile: string;
const KEEP = `sha256:${"0".repeat(64)}`;
const OPERATORS_FILE = `# Reviewed by the site's operator; keep this note.\ntools:\n  - name: keep-me # an older pin\n    digest: ${KEEP}\n`;

test.before(async () => {
  env = await createTestEnv();
  await registerNodeScriptTool(env.orchestrator.url, "hello", "console.log('hello')", { env: { DSN: "db://${secret:DB_PASSWORD}@h", LEVEL: "info" }, resultFile: "out.json" });
  await registerNodeScriptTool(env.orchestrator.url, "other", "console.log('other')");
  tokenFile = join(env.sandboxRoot, "api-token");
  await writeFile(tokenFile, `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
  policyFile = join(env.sandboxRoot, "policy.yaml");
  await writeFile(policyFile, OPERATORS_FILE);
});

test.after(async () => env?.dispose());

function policy(args: string[], extraEnv: Record<string, string> = {}): Promise<ScriptResult> {
  return runScript(AGENT_BIN, ["policy", ...args], { FEM_ORCHESTRATOR_URL: env.orchestrator.url, FEM_API_TOKEN_FILE: tokenFile, FEM_POLICY_FILE: policyFile, ...extraEnv }, 20_000);
}

async function digestOf(ref: string): Promise<string> {
  return (await gqlOk(env.orchestrator.url, `query($id: ID!) { tool(id: $id) { digest } }`, { id: ref })).tool.digest;
}

test("without --yes and without a terminal it shows the definition and pins nothing", async () => {
  const shown = await policy(["add", "hello@1.0.0"]);
  assert.is(shown.code, 1, shown.stderr);
  assert.match(shown.stdout, new RegExp(`^tool hello@1\\.0\\.0\\n {2}digest {7}${await digestOf("hello@1.0.0")}\\n {2}executable {3}${process.execPath.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\n`));
  for (const line of ["  launcher     process", "  image        (none)", "    -e <script>  (STRING, position 0, optional, default ", "    <count>  (INT, position 3, optional, no default)", "    DSN=db://${secret:DB_PASSWORD}@h", "    LEVEL=info  (value not pinned)", "  result file  out.json"]) {
    assert.ok(shown.stdout.includes(line), `${line}\n---\n${shown.stdout}`);
  }
  assert.match(shown.stderr, /not pinned: stdin is not a terminal, so nobody was asked; review the definition above and run again with --yes/);
  assert.is(await readFile(policyFile, "utf8"), OPERATORS_FILE);
});

test("a token is never taken on the command line, nor from a file others may read", async () => {
  const onCommandLine = await policy(["add", "hello@1.0.0", "--yes", `--api-token=${TEST_ADMIN_TOKEN}`]);
  assert.is(onCommandLine.code, 1);
  assert.match(onCommandLine.stderr, /^fem-agent policy: an API token is never taken on the command line/);
  const open = join(env.sandboxRoot, "open-token");
  await writeFile(open, TEST_ADMIN_TOKEN);
  await chmod(open, 0o644);
  const openFile = await policy(["add", "hello@1.0.0", "--yes"], { FEM_API_TOKEN_FILE: open });
  assert.is(openFile.code, 1);
  assert.match(openFile.stderr, /FEM_API_TOKEN_FILE .* is open to group or others \(mode 0644\)/);
  const wrong = await policy(["add", "hello@1.0.0", "--yes"], { FEM_API_TOKEN_FILE: "", FEM_API_TOKEN: "fem_pat_not-a-real-token-0123456789abcdef" });
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /answered UNAUTHENTICATED/);
  const missing = await policy(["add", "nope@1", "--yes"]);
  assert.match(missing.stderr, /answered NOT_FOUND/);
  assert.is(await readFile(policyFile, "utf8"), OPERATORS_FILE);
});

test("--yes pins the reviewed digest, keeping the operator's entries and comments; the agent then runs that tool and no other", async () => {
  const digest = await digestOf("hello@1.0.0");
  const pinned = await policy(["add", "hello@1.0.0", "--yes"]);
  assert.is(pinned.code, 0, pinned.stderr);
  assert.match(pinned.stdout, new RegExp(`pinned hello@1\\.0\\.0 with digest ${digest} in ${policyFile}\\nrestart the agent for it to take effect\\n$`));
  const text = await readFile(policyFile, "utf8");
  assert.ok(text.startsWith(OPERATORS_FILE), text);
  assert.ok(text.endsWith(`  - name: hello\n    version: 1.0.0\n    digest: ${digest}\n`), text);
  const again = await policy(["add", "hello@1.0.0", "--yes"], { FEM_API_TOKEN_FILE: "", FEM_API_TOKEN: TEST_ADMIN_TOKEN });
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stdout, /is already pinned/);
  const shown = await policy(["show"]);
  assert.ok(shown.stdout.startsWith(`policy ${policyFile}\n  keep-me@*  ${KEEP}\n  hello@1.0.0  ${digest}\n`), shown.stdout);
  assert.match(shown.stdout, /\n {2}outputs: review — /, "the release policy (the default) is shown too");

  await registerNode(env, "pa-1");
  const secrets = join(env.sandboxRoot, "secrets.yaml");
  await writeFile(secrets, "DB_PASSWORD: x\n", { mode: 0o600 });
  await env.startAgent("pa-1", { env: { FEM_POLICY_FILE: policyFile, FEM_SECRETS_FILE: secrets } });
  assert.is((await runOn(env, "pa-1", "hello@1.0.0")).state, "SUCCEEDED");
  assertRefused(env, await runOn(env, "pa-1", "other@1.0.0"), "pa-1", /tool other@1\.0\.0 with digest sha256:[0-9a-f]{64} is not pinned/);
});

test.run();
