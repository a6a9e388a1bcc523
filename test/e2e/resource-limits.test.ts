/**
 * A task's resource requests become its run's limits in the `sandbox` launcher: memoryMiB the
 * memory limit (stricter than the node's default), cpus a CPU quota where the cgroup cpu controller
 * is writable. Skipped with a reason where bubblewrap is not installed.
 */
import { existsSync } from "node:fs";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { addToTestProject, gqlOk } from "../support/graphql.js";
import { finishedWorkflow, REGISTER_TOOL, SUBMIT, type RunView } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("resource requests become run limits");
const BWRAP = "/usr/bin/bwrap";
const PYTHON = "/usr/bin/python3";
const NODE = "box-limits";
/** The node's default memory limit: looser than the task's request below. */
const NODE_MEMORY_MIB = 512;

let env: TestEnv;

const skip = () => {
  if (existsSync(BWRAP) && existsSync(PYTHON)) return false;
  console.log(`  skipped: ${BWRAP} or ${PYTHON} is missing (apt-get install bubblewrap python3)`);
  return true;
};

test.before(async () => {
  if (skip()) return;
  env = await createTestEnv();
  await gqlOk(env.orchestrator.url, `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id } } }`, {
    input: { id: NODE, capacity: 2, launchers: ["sandbox"], resources: { cpus: 2, memoryMiB: 2048 } },
  });
  await addToTestProject(env.orchestrator.url, [NODE]);
  await env.startAgent(NODE, { capacity: 2, env: { FEM_LAUNCHERS: "sandbox", FEM_RUN_MEMORY_MIB: String(NODE_MEMORY_MIB), FEM_RUN_PIDS_MAX: "64" } });
});

test.after(async () => env?.dispose());

async function registerBoxTool(name: string, script: string): Promise<string> {
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
    input: { name, version: "1", executable: PYTHON, launcher: "sandbox", args: [{ id: "script", type: "STRING", position: 0, prefix: "-c", default: script }] },
  });
  return `${name}@1`;
}

async function runWith(tool: string, resources: Record<string, number>): Promise<RunView> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: [NODE], resources }] } });
  return (await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id, 60_000)).tasks[0]!.runs[0]!;
}

test("a run allocating past its memoryMiB request ends OUT_OF_MEMORY naming the request as the limit", async () => {
  if (skip()) return;
  const hog = await registerBoxTool("hog", `chunks = []\nwhile True:\n    chunks.append(b"\\x01" * 1048576)`);
  const run = await runWith(hog, { memoryMiB: 64 });
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "OUT_OF_MEMORY", run.message ?? "");
  assert.match(run.message ?? "", /64 MiB \(the task's memoryMiB request\)/);
  assert.ok((run.usage.peakRssBytes ?? 0) < 128 * 1024 * 1024, `peak ${run.usage.peakRssBytes} bytes stays near the 64 MiB limit`);
});

test("a run within its memoryMiB request succeeds", async () => {
  if (skip()) return;
  const modest = await registerBoxTool("modest", `data = b"\\x01" * (16 * 1048576)\nprint(len(data))`);
  const run = await runWith(modest, { memoryMiB: 64 });
  assert.is(run.state, "SUCCEEDED", run.message ?? "");
});

test("a run's cpus request caps its CPU time where the cgroup cpu controller is writable", async () => {
  if (skip()) return;
  const node = await waitUntil(
    async () => {
      const data = await gqlOk(env.orchestrator.url, `{ node(id: "${NODE}") { reportedLaunchers { name isolation { limits } } } }`);
      return data.node.reportedLaunchers.length > 0 ? data.node : undefined;
    },
    10_000,
    "a heartbeat with launchers",
  );
  const limits: string[] = node.reportedLaunchers.find((l: { name: string }) => l.name === "sandbox").isolation.limits;
  if (!limits.includes("cpus")) {
    console.log("  skipped: the cgroup cpu controller is not writable here, so no CPU quota is enforced");
    return;
  }
  const spin = await registerBoxTool("spin", `import time\nend = time.time() + 2\nwhile time.time() < end:\n    pass`);
  const run = await runWith(spin, { cpus: 0.2 });
  assert.is(run.state, "SUCCEEDED", run.message ?? "");
  const cpuMs = (run.usage.cpuUserMs ?? 0) + (run.usage.cpuSystemMs ?? 0);
  assert.ok(run.usage.wallMs! >= 1_900, `wall ${run.usage.wallMs} ms`);
  assert.ok(cpuMs > 100, `the run's CPU time was measured (${cpuMs} ms)`);
  assert.ok(cpuMs < 0.45 * run.usage.wallMs!, `${cpuMs} ms of CPU in ${run.usage.wallMs} ms of wall time, with a quota of 0.2 cpus`);
});

test.run();
