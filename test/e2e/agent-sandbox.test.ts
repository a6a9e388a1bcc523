import { mkdir, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { waitUntil } from "../support/wait.js";

const test = suite("agent sandboxes");
let env: TestEnv;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a"]);
});

test.after(async () => env?.dispose());

const exists = (path: string) => stat(path).then(() => true, () => false);

test("run directories older than FEM_SANDBOX_RETENTION_MS are deleted; newer ones stay", async () => {
  const runs = join(env.sandboxRoot, "site-a", "runs");
  const old = join(runs, "00000000-0000-4000-8000-000000000001-1");
  const fresh = join(runs, "00000000-0000-4000-8000-000000000002-1");
  await mkdir(old, { recursive: true });
  await mkdir(fresh, { recursive: true });
  const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000);
  await utimes(old, tenDaysAgo, tenDaysAgo);
  await env.startAgent("site-a", { env: { FEM_SANDBOX_RETENTION_MS: String(86_400_000) } });
  await waitUntil(async () => !(await exists(old)), 10_000, "the old run directory to be removed");
  assert.ok(await exists(fresh), "a recent run directory is kept");
});

test.run();
