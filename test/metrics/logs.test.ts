import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createLogger } from "../../src/logger.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { TEST_ADMIN_TOKEN } from "../support/graphql.js";

const test = suite("logs: JSON lines with request ids, and no token or credential in them");
let env: TestEnv;
const lines: string[] = [];

async function post(query: string, variables: Record<string, unknown>, token: string): Promise<{ requestId: string; status: number; body: any }> {
  const response = await fetch(env.orchestrator.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(10_000),
  });
  return { requestId: response.headers.get("x-request-id") ?? "", status: response.status, body: await response.json() };
}

test.before(async () => {
  env = await createTestEnv({}, {}, { logger: createLogger("debug", (line) => lines.push(line)) });
});

test.after(async () => {
  await env?.dispose();
});

test("every line is JSON with a level, a time and a message; mutations log their request id", async () => {
  const created = await post(`mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`, { input: { name: "log-test" } }, TEST_ADMIN_TOKEN);
  assert.is(created.status, 200, JSON.stringify(created.body));
  assert.ok(created.requestId.length > 0);
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  for (const entry of parsed) {
    assert.ok(["debug", "info", "warn", "error"].includes(entry.level as string), JSON.stringify(entry));
    assert.type(entry.time, "string");
    assert.type(entry.message, "string");
  }
  const operation = parsed.find((e) => e.requestId === created.requestId);
  assert.ok(operation, `no line carries request id ${created.requestId}`);
  assert.is(operation!.message, "graphql operation");
  assert.is(operation!.operation, "mutation");
});

test("no token, node credential or broker password appears in the log, whatever the requests carried", async () => {
  const created = await post(`mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`, { input: { name: "secret-holder" } }, TEST_ADMIN_TOKEN);
  const token: string = created.body.data.createApiToken.token;
  const node = await post(`mutation { registerNode(input: { id: "site-secret" }) { credential } }`, {}, TEST_ADMIN_TOKEN);
  const credential: string = node.body.data.registerNode.credential;
  // A wrong token that looks like ours, a query that fails, and a variable holding a credential.
  const wrong = `fem_pat_wrong-${"x".repeat(30)}`;
  assert.is((await post(`{ me { subject } }`, {}, wrong)).status, 401);
  await post(`query($t: String) { nodes(first: 1) { edges { node { id } } } }`, { t: credential }, token);
  await post(`{ notAField }`, {}, token);
  const text = lines.join("\n");
  for (const secret of [TEST_ADMIN_TOKEN, token, credential, wrong, "guest:guest"]) {
    assert.not.ok(text.includes(secret), `the log holds a secret (${secret.slice(0, 12)}…)`);
  }
  assert.ok(lines.length > 3, "the orchestrator logged something");
});

test.run();
