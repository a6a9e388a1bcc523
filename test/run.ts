/**
 * Runs every compiled suite (dist/test/**\/*.test.js, or those whose path below dist/test/ contains an argument)
 * with uvu, then prints one closing line `N passed, N failed` and exits non-zero on any failure or
 * when no test ran. A watchdog ends a run that hangs.
 */
// Entities and enums decorate at import: a suite run alone needs the polyfill as the whole run has it.
import "reflect-metadata";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "uvu/run";

const root = fileURLToPath(new URL(".", import.meta.url));
// `test/e2e/logs` and `e2e/logs` select the same suites (a path as typed from the checkout's root works too).
const filters = process.argv.slice(2).map((x) => x.replace(/^(dist\/)?test\//, ""));
const WATCHDOG_MS = Number(process.env.TEST_WATCHDOG_MS ?? 60 * 60 * 1000);

function find(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith(".test.js") ? [path] : [];
  });
}

const files = find(root)
  // Match below dist/test/ only: a checkout's own path (say /work/wt-auth) must not select every suite.
  .filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)))
  .sort();

let captured = "";
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  captured += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
  return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;

const watchdog = setTimeout(() => {
  console.error(`\ntest run exceeded ${WATCHDOG_MS} ms; aborting`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

await run(files.map((file) => ({ name: relative(root, file), file })), { bail: false });

// uvu prints "Total: N" and "Passed: N"; take them without colour codes.
const plain = captured.replace(/\u001b\[[0-9;]*m/g, "");
const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const failed = Math.max(0, total - passed);
process.stdout.write = write;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
clearTimeout(watchdog);
process.exit(failed > 0 || passed === 0 || process.exitCode ? 1 : 0);
