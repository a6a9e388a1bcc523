/**
 * The `podman` launcher for real, with an image built on the spot (a busybox-static root imported
 * with `podman import`: no registry), attacked like the sandbox launcher in run-box.test.ts. The
 * `docker` launcher is checked only where a docker daemon answers; the argv of every container
 * launcher is in test/unit/container-argv.test.ts.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AGENT_BIN, type AgentProcess } from "../support/agent.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { finalRun as finalRunOf, firstRun, registerNode, registerScriptTool, reportedLaunchers, runLogText, submitOne } from "../support/node-runs.js";
import { processesWith } from "../support/processes.js";
import { runScript } from "../support/script.js";
import { waitUntil } from "../support/wait.js";

const test = suite("container launchers: podman for real");
const PODMAN = "/usr/bin/podman";
const BUSYBOX = "/bin/busybox";
/** Its own tag per suite run, removed after, so runs leave no image behind. */
const IMAGE_TAG = `localhost/fem-test/busybox:${randomBytes(4).toString("hex")}`;
const MEMORY_MIB = 32;
const MARKER_ENV = "FEM_TEST_AGENT_SECRET";

let env: TestEnv;
let image = "";
let skipReason: string | null = null;

function sh(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Builds the test image from busybox-static (every applet a symlink) and returns its digest reference. */
async function buildImage(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "fem-image-"));
  try {
    for (const dir of ["bin", "tmp", "sandbox", "proc", "dev", "etc"]) await mkdir(join(root, dir));
    await copyFile(BUSYBOX, join(root, "bin", "busybox"));
    const applets = (await sh(BUSYBOX, ["--list"])).stdout.split("\n").filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== "busybox");
    for (const applet of applets) await symlink("busybox", join(root, "bin", applet));
    const archive = `${root}.tar`;
    const tar = await sh("/usr/bin/tar", ["-C", root, "-cf", archive, "."]);
    if (tar.code !== 0) throw new Error(`tar: ${tar.stderr}`);
    const imported = await sh(PODMAN, ["import", archive, IMAGE_TAG]);
    await rm(archive, { force: true });
    if (imported.code !== 0) throw new Error(`podman import: ${imported.stderr}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  const digest = await sh(PODMAN, ["image", "inspect", "--format", "{{index .RepoDigests 0}}", IMAGE_TAG]);
  if (digest.code !== 0 || !/@sha256:[0-9a-f]{64}$/.test(digest.stdout.trim())) throw new Error(`no digest for ${IMAGE_TAG}: ${digest.stderr}${digest.stdout}`);
  return digest.stdout.trim();
}

/** A podman tool running `sh -c <script> <value>` in the test image (or `options.image`). */
function registerContainerTool(name: string, script: string, options: { env?: Record<string, string>; image?: string } = {}): Promise<string> {
  return registerScriptTool(env, { name, executable: "/bin/sh", launcher: "podman", image: options.image ?? image, env: options.env, script });
}

const submit = (tool: string, value?: string) => submitOne(env, tool, "pod-a", value);
const runOf = (workflowId: string) => firstRun(env, workflowId);
const finalRun = (workflowId: string) => finalRunOf(env, workflowId);
const logText = (runId: string) => runLogText(env, runId);

/** Containers (running or not) whose name starts with `fem-<runId>`. */
async function containersOf(runId: string): Promise<string[]> {
  const listed = await sh(PODMAN, ["ps", "--all", "--format", "{{.Names}}", "--filter", `name=fem-${runId}`]);
  return listed.stdout.split("\n").filter((line) => line !== "");
}

/** Cgroup directories named after the run, in any hierarchy. */
async function cgroupsOf(runId: string): Promise<string[]> {
  const found = await sh("/usr/bin/find", ["/sys/fs/cgroup", "-maxdepth", "5", "-type", "d", "-name", `fem-${runId}-*`]);
  return found.stdout.split("\n").filter((line) => line !== "");
}

test.before(async () => {
  if (!existsSync(PODMAN)) return void (skipReason = `${PODMAN} is missing (apt-get install podman)`);
  if (!existsSync(BUSYBOX)) return void (skipReason = `${BUSYBOX} is missing to build the test image (apt-get install busybox-static)`);
  image = await buildImage();
  env = await createTestEnv();
  await registerNode(env, "pod-a", 4, ["process", "podman"]);
  await startPodAgent("pod-a");
});

function startPodAgent(nodeId: string): Promise<AgentProcess> {
  return env.startAgent(nodeId, {
    capacity: 4,
    env: {
      FEM_LAUNCHERS: "process,podman",
      FEM_RUN_MEMORY_MIB: String(MEMORY_MIB),
      FEM_RUN_PIDS_MAX: "64",
      FEM_RUN_CPUS: "1",
      // crun cannot run containers on a cgroup v1 host whose cgroup2 mount holds a controller ("hybrid mode"); runc can.
      ...(existsSync("/usr/bin/runc") ? { FEM_PODMAN_RUNTIME: "runc" } : {}),
      [MARKER_ENV]: "the-agent-environment-leaked",
    },
  });
}

test.after(async () => {
  await env?.dispose();
  if (image !== "") await sh(PODMAN, ["rmi", "--force", IMAGE_TAG]);
});

const skip = () => {
  if (skipReason === null) return false;
  console.log(`  skipped: ${skipReason}`);
  return true;
};

test("the node reports the podman launcher and its isolation", async () => {
  if (skip()) return;
  const { podman } = await reportedLaunchers(env, "pod-a");
  assert.equal(podman?.isolation, {
    network: "none",
    filesystem: "private",
    pidNamespace: true,
    separateUser: true,
    killedWithAgent: false,
    limits: ["memory", "pids", "disk", "cpuTime", "cpus"],
  });
});

const PROBE = `
if nc -w 2 127.0.0.1 5432 </dev/null 2>/dev/null; then pg=connected; else pg=refused; fi
if nc -w 2 127.0.0.1 5672 </dev/null 2>/dev/null; then mq=connected; else mq=refused; fi
if touch /fem-escape 2>/dev/null; then root=written; else root=refused; fi
if echo x > /sandbox/mine.txt; then own=written; else own=refused; fi
names=$(tr '\\0' '\\n' < /proc/1/environ | cut -d= -f1 | sort | tr '\\n' ' ')
printf '{"postgres":"%s","rabbitmq":"%s","root":"%s","own":"%s","uid":"%s","cwd":"%s","env":"%s","setting":"%s"}' \\
  "$pg" "$mq" "$root" "$own" "$(id -u)" "$(pwd)" "$names" "$TOOL_SETTING" > result.json
`;

test("a podman run reaches neither PostgreSQL nor RabbitMQ, cannot write its root, and gets only the tool's environment", async () => {
  if (skip()) return;
  const tool = await registerContainerTool("pod-probe", PROBE, { env: { TOOL_SETTING: "declared value" } });
  const { workflowId } = await submit(tool);
  const run = await finalRun(workflowId);
  assert.is(run.state, "SUCCEEDED", await logText(run.id));
  const probe = run.result as Record<string, string>;
  assert.is(probe.postgres, "refused");
  assert.is(probe.rabbitmq, "refused");
  assert.is(probe.root, "refused");
  assert.is(probe.own, "written");
  assert.is(probe.cwd, "/sandbox");
  assert.is(probe.uid, "65534");
  // podman always sets HOME and HOSTNAME (documented in docs/agents.md); nothing of the agent's.
  assert.is(probe.env!.trim(), "HOME HOSTNAME TOOL_SETTING");
  assert.is(probe.setting, "declared value");
  assert.equal(await containersOf(run.id), [], "the container is removed after the run");
});

test("a run's result and files are read from the mounted run directory", async () => {
  if (skip()) return;
  const tool = await registerContainerTool("pod-result", `echo hello from "$0"; printf '{"answer":42}' > result.json`);
  const { workflowId } = await submit(tool, "the container");
  const run = await finalRun(workflowId);
  assert.is(run.state, "SUCCEEDED", await logText(run.id));
  assert.equal(run.result, { answer: 42 });
  assert.match(await logText(run.id), /hello from the container/);
  assert.ok((run.usage.outputBytes ?? 0) > 0);
  assert.equal(await containersOf(run.id), []);
  assert.equal(await cgroupsOf(run.id), [], "the run's cgroups and what podman made below them are removed");
});

test("a cancel kills the container: none is left, no process, and no env value was ever on a command line", async () => {
  if (skip()) return;
  const marker = `fem-pod-cancel-${randomBytes(4).toString("hex")}`;
  const secretValue = `value-${randomBytes(6).toString("hex")}`;
  const tool = await registerContainerTool("pod-sleep", `sleep 300; echo "$0"`, { env: { TOKEN: secretValue } });
  const { workflowId, taskId } = await submit(tool, marker);
  const runId = (await runOf(workflowId)).id;
  await waitUntil(async () => (await containersOf(runId)).length === 1 && (await processesWith(marker)).length >= 2, 20_000, "the container to run");
  assert.equal(await processesWith(secretValue), [], "an env value is on a command line");
  await gqlOk(env.orchestrator.url, `mutation($id: ID!) { cancelTask(id: $id) { id } }`, { id: taskId });
  const run = await finalRun(workflowId);
  assert.is(run.state, "CANCELLED");
  await waitUntil(async () => (await containersOf(runId)).length === 0, 10_000, `no container fem-${runId}-*`);
  await waitUntil(async () => (await processesWith(marker)).length === 0, 10_000, `no process with ${marker}`);
});

test("a run allocating past the memory limit ends FAILED OUT_OF_MEMORY naming the limit, and leaves no cgroup", async () => {
  if (skip()) return;
  const tool = await registerContainerTool("pod-hog", "dd if=/dev/zero of=/dev/null bs=100M count=1");
  const { workflowId } = await submit(tool);
  const run = await finalRun(workflowId);
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "OUT_OF_MEMORY", `${run.message}\n${await logText(run.id)}`);
  assert.match(run.message ?? "", `memory limit of ${MEMORY_MIB} MiB`);
  assert.equal(await containersOf(run.id), []);
  assert.equal(await cgroupsOf(run.id), []);
  assert.not.ok(existsSync(join(process.cwd(), "oom")), "podman's monitor left an oom file in the agent's working directory");
});

test("a container outlives an agent killed with SIGKILL; the next agent reports the run lost and removes the container and its cgroups", async () => {
  if (skip()) return;
  await registerNode(env, "pod-b", 4, ["process", "podman"]);
  const agent = await startPodAgent("pod-b");
  const tool = await registerContainerTool("pod-outlive", `sleep 300; echo "$0"`);
  const { workflowId } = await submitOne(env, tool, "pod-b", `fem-pod-agent-${randomBytes(4).toString("hex")}`);
  const runId = (await runOf(workflowId)).id;
  await waitUntil(async () => (await containersOf(runId)).length === 1, 20_000, "the container to run");
  await agent.kill9();
  assert.is((await containersOf(runId)).length, 1, "killedWithAgent is false: the container goes on");
  await startPodAgent("pod-b");
  const run = await finalRun(workflowId);
  assert.is(run.failureReason, "NODE_LOST");
  await waitUntil(async () => (await containersOf(runId)).length === 0, 10_000, `no container fem-${runId}-*`);
  assert.equal(await cgroupsOf(runId), []);
});

test("an image not pinned by digest, or not on the node, fails the run LAUNCH_ERROR saying so", async () => {
  if (skip()) return;
  const tagged = await registerContainerTool("pod-tagged", "true", { image: IMAGE_TAG });
  const tagRun = await finalRun((await submit(tagged)).workflowId);
  assert.is(tagRun.failureReason, "LAUNCH_ERROR");
  assert.match(tagRun.message ?? "", `image "${IMAGE_TAG}" is not pinned by digest`);
  const absent = await registerContainerTool("pod-absent", "true", { image: `localhost/fem-test/absent@sha256:${"0".repeat(64)}` });
  const absentRun = await finalRun((await submit(absent)).workflowId);
  assert.is(absentRun.failureReason, "LAUNCH_ERROR");
  assert.match(absentRun.message ?? "", "is not on this node");
});

test("an agent offering a runtime that is not installed refuses to start with one line", async () => {
  if (skip()) return;
  const refused = await runScript(
    AGENT_BIN,
    [],
    {
      AMQP_URL: "amqp://127.0.0.1:5672",
      FEM_NODE_CREDENTIAL: "not-needed-the-launchers-are-checked-first",
      FEM_NODE_ID: "pod-b",
      FEM_SANDBOX_DIR: join(env.sandboxRoot, "pod-b"),
      FEM_ALLOW_UNSIGNED: "true",
      FEM_LAUNCHERS: "process,apptainer",
      PATH: "/usr/local/bin:/usr/bin:/bin",
    },
    20_000,
  );
  assert.is(refused.code, 1);
  // Before it: the warning that no orchestrator key is pinned (FEM_ALLOW_UNSIGNED).
  assert.is(refused.stderr.trimEnd().split("\n").at(-1), "fem-agent: cannot start: the apptainer launcher needs apptainer on the agent's PATH (install Apptainer; it is not packaged on Debian)");
  assert.not.match(refused.stderr, /\n\s+at /, "no stack trace");
});

test("docker: runs only where a daemon answers", async () => {
  const info = await sh("/usr/bin/env", ["docker", "info", "--format", "{{.ServerVersion}}"]);
  if (info.code !== 0) {
    console.log(`  skipped: docker info fails (${info.stderr.trim().split("\n")[0] ?? "no daemon"}); the docker argv is unit-tested`);
    return;
  }
  // A daemon here would need the image in a registry: docker gives an image loaded from an archive no digest reference.
  console.log("  skipped: a docker daemon answers, but its images need a registry for a digest reference (see docs/agents.md)");
});

test.run();
