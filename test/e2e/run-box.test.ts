/**
 * The `sandbox` launcher (bubblewrap), attacked for real: each test tries what a hostile tool would
 * and checks that the node stopped it. Skipped with a reason where bubblewrap is not installed.
 */
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { hasBubblewrap, PY_WRITE, PYTHON, skipWithoutBubblewrap } from "../support/sandbox.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import type { AgentProcess } from "../support/agent.js";
import { finalRun as finalRunOf, firstRun, registerNode as registerNodeOf, registerScriptTool, reportedLaunchers, runLogText, submitOne } from "../support/node-runs.js";
import { processesWith } from "../support/processes.js";
import { waitUntil } from "../support/wait.js";

const test = suite("runs in a box: the sandbox launcher");
const MARKER_ENV = "FEM_TEST_AGENT_SECRET";
const MEMORY_MIB = 64;
const PIDS_MAX = 48;
const DISK_MIB = 4;

let env: TestEnv;
let agentDir: string;
let homeDir: string;

const registerNode = (id: string) => registerNodeOf(env, id, 4, ["process", "sandbox"]);

async function startBoxAgent(nodeId: string): Promise<AgentProcess> {
  return env.startAgent(nodeId, {
    capacity: 4,
    env: {
      FEM_LAUNCHERS: "process,sandbox",
      FEM_RUN_MEMORY_MIB: String(MEMORY_MIB),
      FEM_RUN_PIDS_MAX: String(PIDS_MAX),
      FEM_RUN_DISK_MIB: String(DISK_MIB),
      HOME: homeDir,
      [MARKER_ENV]: "the-agent-environment-leaked",
    },
  });
}

/** A sandboxed tool running `python3 -c <script> <value>` (or `sh -c`), with `env` as its only environment. */
function registerBoxTool(name: string, script: string, options: { shell?: boolean; env?: Record<string, string> } = {}): Promise<string> {
  return registerScriptTool(env, { name, executable: options.shell ? "/bin/sh" : PYTHON, launcher: "sandbox", env: options.env, script });
}

const submit = (tool: string, nodeId: string, value?: string) => submitOne(env, tool, nodeId, value);
const runOf = (workflowId: string) => firstRun(env, workflowId);
const finalRun = (workflowId: string) => finalRunOf(env, workflowId);
const logText = (runId: string) => runLogText(env, runId);

const PROBE = `
import json, os, socket, sys
def connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
        return "connected"
    except OSError as e:
        return e.strerror or str(e)
${PY_WRITE}paths = json.loads(sys.argv[1])
json.dump({
    "postgres": connect(5432),
    "rabbitmq": connect(5672),
    "writeUsr": write("/usr/fem-escape"),
    "writeTool": write(sys.executable),
    "writeRunDir": write("mine.txt"),
    "visible": {p: os.path.exists(p) for p in paths},
    "env": [v.decode() for v in open("/proc/self/environ", "rb").read().split(b"\\0") if v],
    "uid": os.getuid(),
    "cwd": os.getcwd(),
}, open("result.json", "w"))
`;

let probe: Record<string, any> | null = null;

test.before(async () => {
  if (!hasBubblewrap()) return;
  env = await createTestEnv();
  agentDir = join(env.sandboxRoot, "box-a");
  homeDir = join(env.sandboxRoot, "home");
  await mkdir(agentDir, { recursive: true });
  await mkdir(homeDir, { recursive: true });
  await writeFile(join(agentDir, "broker-credential.txt"), "amqp://node:secret@broker");
  await writeFile(join(homeDir, ".netrc"), "machine broker login node password secret");
  await registerNode("box-a");
  await startBoxAgent("box-a");
});

test.after(async () => env?.dispose());

test("the node reports its launchers and the isolation each gives", async () => {
  if (skipWithoutBubblewrap()) return;
  const byName = await reportedLaunchers(env, "box-a");
  assert.equal(byName.process.isolation, { network: "host", filesystem: "shared", pidNamespace: false, separateUser: false, killedWithAgent: false, limits: [] });
  assert.equal(byName.sandbox.isolation.network, "none");
  assert.equal(byName.sandbox.isolation.filesystem, "private");
  assert.ok(byName.sandbox.isolation.pidNamespace && byName.sandbox.isolation.killedWithAgent);
  // A CPU quota ("cpus") is offered only where the cgroup cpu controller is writable.
  assert.equal(byName.sandbox.isolation.limits.filter((l: string) => l !== "cpus"), ["memory", "pids", "disk", "cpuTime"]);
});

test("a sandboxed run reaches neither PostgreSQL nor RabbitMQ on 127.0.0.1, and cannot write outside its directory", async () => {
  if (skipWithoutBubblewrap()) return;
  const tool = await registerBoxTool("probe", PROBE, { env: { TOOL_SETTING: "declared" } });
  const hidden = [join(agentDir, "journal.jsonl"), join(agentDir, "broker-credential.txt"), join(agentDir, "runs"), join(agentDir, "spool"), homeDir, join(homeDir, ".netrc"), env.sandboxRoot];
  const { workflowId } = await submit(tool, "box-a", JSON.stringify(hidden));
  const run = await finalRun(workflowId);
  assert.is(run.state, "SUCCEEDED", await logText(run.id));
  probe = run.result as Record<string, any>;
  assert.is(probe.postgres, "Connection refused");
  assert.is(probe.rabbitmq, "Connection refused");
  assert.is(probe.writeUsr, "Read-only file system");
  assert.is(probe.writeTool, "Read-only file system");
  assert.is(probe.writeRunDir, "written");
  assert.is(probe.cwd, "/sandbox");
});

test("the agent's journal, its credential file, its home and other runs are not visible", () => {
  if (skipWithoutBubblewrap()) return;
  assert.ok(probe, "the probe ran");
  for (const [path, visible] of Object.entries(probe!.visible as Record<string, boolean>)) assert.is(visible, false, `${path} is visible inside the sandbox`);
  assert.ok(existsSync(join(agentDir, "journal.jsonl")), "the journal exists on the node");
});

test("the environment holds only what the tool declared, and the run is not the agent's uid", () => {
  if (skipWithoutBubblewrap()) return;
  assert.ok(probe, "the probe ran");
  assert.equal(probe!.env, ["TOOL_SETTING=declared"]);
  if (process.getuid?.() === 0) assert.is(probe!.uid, 65534);
});

const SETSID = (thenSleep: boolean) => `
import subprocess, sys, time
subprocess.Popen(["/usr/bin/setsid", "${PYTHON}", "-c", "import time; time.sleep(300)", sys.argv[1]], start_new_session=True)
print("escaped into a new session", flush=True)
${thenSleep ? "time.sleep(300)" : ""}
`;

test("a process that calls setsid is gone once the run ends", async () => {
  if (skipWithoutBubblewrap()) return;
  const marker = `fem-box-end-${randomBytes(4).toString("hex")}`;
  const tool = await registerBoxTool("setsid-exit", SETSID(false));
  const { workflowId } = await submit(tool, "box-a", marker);
  const run = await finalRun(workflowId);
  assert.is(run.state, "SUCCEEDED", await logText(run.id));
  assert.match(await logText(run.id), /escaped into a new session/);
  await waitUntil(async () => (await processesWith(marker)).length === 0, 5_000, `no process with ${marker}`);
});

test("a process that calls setsid is gone after a cancel", async () => {
  if (skipWithoutBubblewrap()) return;
  const marker = `fem-box-cancel-${randomBytes(4).toString("hex")}`;
  const tool = await registerBoxTool("setsid-cancel", SETSID(true));
  const { workflowId, taskId } = await submit(tool, "box-a", marker);
  await waitUntil(async () => (await processesWith(marker)).length >= 1, 15_000, "the escaped process to start");
  await gqlOk(env.orchestrator.url, `mutation($id: ID!) { cancelTask(id: $id) { id } }`, { id: taskId });
  await waitUntil(async () => (await processesWith(marker)).length === 0, 10_000, `no process with ${marker}`);
  assert.is((await finalRun(workflowId)).state, "CANCELLED");
});

test("a run allocating past the memory limit ends FAILED with OUT_OF_MEMORY naming the limit", async () => {
  if (skipWithoutBubblewrap()) return;
  const tool = await registerBoxTool("hog", `chunks = []\nwhile True:\n    chunks.append(b"\\x01" * 1048576)`);
  const { workflowId } = await submit(tool, "box-a");
  const run = await finalRun(workflowId);
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "OUT_OF_MEMORY", run.message ?? "");
  assert.match(run.message ?? "", `${MEMORY_MIB} MiB`);
});

test("a fork bomb hits the pids limit while the agent and another run carry on", async () => {
  if (skipWithoutBubblewrap()) return;
  const bomb = await registerBoxTool("fork-bomb", "i=0; while [ $i -lt 100000 ]; do sleep 30 & i=$((i+1)); done", { shell: true });
  const calm = await registerBoxTool("calm", `import time; time.sleep(2); open("result.json", "w").write("42")`);
  const bombed = await submit(bomb, "box-a");
  const other = await submit(calm, "box-a");
  const bombRun = await finalRun(bombed.workflowId);
  assert.is(bombRun.state, "FAILED");
  assert.match(bombRun.message ?? "", `process limit of ${PIDS_MAX}`);
  const otherRun = await finalRun(other.workflowId);
  assert.is(otherRun.state, "SUCCEEDED", await logText(otherRun.id));
  assert.is(otherRun.result, 42);
  const node = await gqlOk(env.orchestrator.url, `{ node(id: "box-a") { connectivity } }`);
  assert.is(node.node.connectivity, "ONLINE");
  assert.is(env.agents[0]!.child.exitCode, null, "the agent is alive");
});

test("a file written past the disk limit fails the run with the limit as its reason", async () => {
  if (skipWithoutBubblewrap()) return;
  const tool = await registerBoxTool("big-file", `set -e; head -c ${(DISK_MIB + 4) * 1024 * 1024} /dev/zero > big.bin; echo never`, { shell: true });
  const { workflowId } = await submit(tool, "box-a");
  const run = await finalRun(workflowId);
  assert.is(run.state, "FAILED");
  assert.match(run.message ?? "", `disk limit of ${DISK_MIB} MiB`);
  assert.not.match(await logText(run.id), /^never$/m);
});

test("many small files past the disk limit stop the run with the limit as its reason", async () => {
  if (skipWithoutBubblewrap()) return;
  const tool = await registerBoxTool("many-files", `i=0; while [ $i -lt 1000 ]; do head -c 1048576 /dev/zero > f$i; i=$((i+1)); sleep 0.05; done`, { shell: true });
  const { workflowId } = await submit(tool, "box-a");
  const run = await finalRun(workflowId);
  assert.is(run.state, "FAILED");
  assert.match(run.message ?? "", `disk limit of ${DISK_MIB} MiB`);
});

test("killing the agent with SIGKILL kills its sandboxed runs; the next agent reports them lost and removes their cgroups", async () => {
  if (skipWithoutBubblewrap()) return;
  await registerNode("box-b");
  const agent = await startBoxAgent("box-b");
  const marker = `fem-box-agent-${randomBytes(4).toString("hex")}`;
  const tool = await registerBoxTool("outlive-agent", SETSID(true));
  const { workflowId } = await submit(tool, "box-b", marker);
  await waitUntil(async () => (await processesWith(marker)).length >= 1, 15_000, "the run's processes to start");
  const runId = (await runOf(workflowId)).id;
  await agent.kill9();
  await waitUntil(async () => (await processesWith(marker)).length === 0, 5_000, `no process with ${marker} once the agent died`);
  await startBoxAgent("box-b");
  const run = await finalRun(workflowId);
  assert.is(run.failureReason, "NODE_LOST");
  // cgroup v1 keeps pids at its mount's top level (this machine's layout); elsewhere the check has nothing to see.
  const leftover = `/sys/fs/cgroup/pids/fem-${runId}-1`;
  await waitUntil(() => !existsSync(leftover), 5_000, `${leftover} to be removed`);
});

test.run();
