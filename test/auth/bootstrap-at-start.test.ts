import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOrchestrator } from "../../src/app.js";
import { hashApiToken, verifyApiToken } from "../../src/auth/index.js";
import { createLogger } from "../../src/logger.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { withTimeout } from "../support/wait.js";

const test = suite("auth: bootstrap admin token at start");
const TOKEN = `fem_pat_${"b0".repeat(20)}`;
let env: TestEnv;

test.before(async () => {
  env = await createTestEnv();
});

test.after(async () => {
  await env?.dispose();
});

test("an orchestrator started with FEM_BOOTSTRAP_ADMIN_TOKEN stores that ADMIN token once, however often it starts", async () => {
  for (const n of [2, 3]) {
    const another = await withTimeout(createOrchestrator({ ...env.config, bootstrapAdminToken: TOKEN, instanceId: `${env.config.instanceId}-${n}` }, createLogger("silent")), 30_000, "another orchestrator");
    await withTimeout(another.stop(), 30_000, "the other orchestrator to stop");
  }
  const rows = await env.sql<{ roles: string[]; token_hash: string }>(`select roles, token_hash from api_token where token_hash = ?`, [hashApiToken(TOKEN)]);
  assert.equal(rows, [{ roles: ["ADMIN"], token_hash: hashApiToken(TOKEN) }]);
  const identity = await verifyApiToken(env.orchestrator.orm.em.fork(), TOKEN);
  assert.equal(identity.roles, ["ADMIN"]);
});

test.run();
