/**
 * Start-up with authentication: an orchestrator with no way to sign in refuses to start and says
 * what to set; `FEM_AUTH=off` starts, says so in its start-up line, and lets a caller without a
 * token act as a local ADMIN.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createSharedServices, type SharedServices } from "../support/cluster.js";
import { gql } from "../support/graphql.js";
import { spawnOrchestrator, type OrchestratorProcess } from "../support/orchestrator-process.js";

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL("../../src/main.js", import.meta.url));
const test = suite("start-up with authentication");
let services: SharedServices;
const started: OrchestratorProcess[] = [];

test.before(async () => {
  services = await createSharedServices();
});

test.after(async () => {
  for (const orchestrator of started) await orchestrator.terminate().catch(() => undefined);
  await services?.dispose();
});

test("refuses to start in one line when no identity is configured, naming what to set", async () => {
  const env = { PATH: process.env.PATH ?? "", PORT: "0", DATABASE_URL: services.db.url, AMQP_URL: services.vhost.url };
  const result = await run(process.execPath, [MAIN], { env, timeout: 60_000 }).then(
    () => ({ code: 0, stderr: "" }),
    (e: { code?: number; stderr?: string }) => ({ code: e.code ?? 1, stderr: e.stderr ?? "" }),
  );
  assert.is.not(result.code, 0);
  const lines = result.stderr.trim().split("\n").filter((l) => !l.startsWith("{"));
  assert.is(lines.length, 1, result.stderr);
  assert.match(lines[0], /no identity is configured: set FEM_OIDC_ISSUER and FEM_OIDC_AUDIENCE, or FEM_BOOTSTRAP_ADMIN_TOKEN.*FEM_AUTH=off/);
});

test("FEM_AUTH=off starts, says so when it starts listening, and serves a caller without a token as a local ADMIN", async () => {
  const orchestrator = await spawnOrchestrator({ DATABASE_URL: services.db.url, AMQP_URL: services.vhost.url, FEM_AUTH: "off", FEM_BOOTSTRAP_ADMIN_TOKEN: "" });
  started.push(orchestrator);
  assert.match(orchestrator.output(), /listening on .*FEM_AUTH=off: authentication is OFF/);
  const me = await gql(orchestrator.url, `{ me { subject roles } }`, {}, { token: null });
  assert.equal(me.data, { me: { subject: "local-developer", roles: ["ADMIN"] } });
});

test.run();
