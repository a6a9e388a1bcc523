/** The dashboard's own unit tests (vitest, in web/) and its lint (ESLint) run as tests here, so `npm test` covers them. */
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";

const test = suite("dashboard unit tests (vitest)");
const webDir = resolve(dirname(fileURLToPath(import.meta.url)), "../../../web");

test("web/ unit tests pass: graph layout input, log buffer with resume, state colours, live workflow model", () => {
  const result = spawnSync(resolve(webDir, "node_modules/.bin/vitest"), ["run", "--reporter=dot"], { cwd: webDir, encoding: "utf8", timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } });
  const output = `${result.stdout}\n${result.stderr}`;
  assert.is(result.status, 0, output);
  assert.match(output, /Tests\s+\d+ passed/);
});

test("web/ passes its lint (ESLint with typescript-eslint and the React hooks rules, no warnings)", () => {
  const result = spawnSync("npm", ["run", "lint", "--silent"], { cwd: webDir, encoding: "utf8", timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } });
  assert.is(result.status, 0, `${result.stdout}\n${result.stderr}`);
});

test.run();
