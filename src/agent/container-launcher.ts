/**
 * The `podman` and `docker` launchers: each run in a container of the tool's image (pinned by
 * digest, never pulled), with no network, a read-only root, no capabilities, no new privileges,
 * `FEM_RUN_AS_UID`/`GID`, the run's limits, its directory at `/sandbox` and a private `/tmp`, and
 * only the run's environment (from a 0600 file outside the run's directory, never the command
 * line). The container is named `fem-<runId>-<attempt>`: signals, clean-up and the agent's restart
 * find it by that name. It is not removed with `--rm` because its exit must be inspected first.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type { LauncherIsolation } from "../messaging/contracts.js";
import { toError } from "../shared/index.js";
import { removeCgroupTrees, type Cgroups, type RunCgroup } from "./cgroups.js";
import { containerEnv, containerName, envFileText, imageProblem, ociRunArgv, type OciRuntime } from "./container-argv.js";
import { LaunchError, type Launcher, type RunExit, type RunSpec, type StartedRun } from "./launcher.js";
import type { AgentLogger } from "./log.js";
import { spawnDetached } from "./process-launcher.js";
import { fromWrapperStatus, limitHitOf, watchDisk } from "./run-limits.js";
import { chownTree } from "./sandbox.js";

const MIB = 1024 * 1024;
/** Bound on one runtime command besides `run` (inspect, kill, rm). */
const RUNTIME_COMMAND_TIMEOUT_MS = 30_000;
/** What the run's cgroup allows beyond the run's memory limit, for podman's monitor below it. */
const MONITOR_HEADROOM_MIB = 64;
/** How long a signal is retried while the container is still being created. */
const SIGNAL_RETRY_MS = 5_000;
/** Exit statuses by which podman and docker say they could not run the tool. */
const RUNTIME_FAILURES: Record<number, string> = {
  125: "could not run the container",
  126: "could not start the container's command",
  127: "did not find the container's command",
};

export interface ContainerSettings {
  runAsUid: number;
  runAsGid: number;
  /** podman's `--runtime` (e.g. runc); null leaves podman's own setting. */
  podmanRuntime: string | null;
}

export interface ContainerDeps {
  cgroups: Cgroups;
  log: AgentLogger;
  /** Absolute path of the runtime's binary (see `findRuntime`). */
  binary: string;
  /** Directory (created mode 0700) with one private directory per run (`runtimeDirOf`), outside every run's directory. */
  runtimesDir: string;
  /** The environment the runtime's CLI itself gets: the agent's PATH, nothing of the run's. */
  runtimeEnv: Readonly<Record<string, string>>;
}

interface ContainerContext extends ContainerDeps {
  runtime: OciRuntime;
  settings: ContainerSettings;
}

/** Creates the launcher of `runtime`; the runtime's binary must exist (`findRuntime`). */
export async function createContainerLauncher(runtime: OciRuntime, settings: ContainerSettings, deps: ContainerDeps): Promise<Launcher> {
  await makePrivateDir(deps.runtimesDir);
  const context: ContainerContext = { ...deps, runtime, settings };
  return {
    name: runtime,
    isolation: containerIsolation(),
    prepare: (spec) => prepareContainerRun(spec, context),
    reclaim: async (runId, attempt) => {
      const name = containerName(runId, attempt);
      await removeContainer(name, context);
      await fs.rm(path.join(context.runtimesDir, name), { recursive: true, force: true });
      const parent = context.cgroups.hierarchyPath("memory", name);
      if (parent !== null) await removeCgroupTrees(parent);
      await context.cgroups.reclaim(name);
    },
  };
}

function containerIsolation(): LauncherIsolation {
  // The container outlives a killed agent (its runtime's monitor holds it); the next start removes it.
  return { network: "none", filesystem: "private", pidNamespace: true, separateUser: true, killedWithAgent: false, limits: ["memory", "pids", "disk", "cpuTime", "cpus"] };
}

/** Finds `name` in the agent's PATH; throws an `Error` saying what to install when it is missing. */
export async function findRuntime(name: string, searchPath: readonly string[], install: string): Promise<string> {
  for (const dir of searchPath) {
    const file = path.resolve(dir, name);
    if (await fs.access(file, fs.constants.X_OK).then(() => true, () => false)) return file;
  }
  throw new Error(`the ${name} launcher needs ${name} on the agent's PATH (${install})`);
}

async function prepareContainerRun(spec: RunSpec, context: ContainerContext) {
  const { runtime } = context;
  const problem = imageProblem(spec.image, runtime);
  if (problem !== null) throw new LaunchError(problem);
  const image = spec.image!;
  const inspected = await runtimeCommand(context, ["image", "inspect", "--format", "{{.Id}}", image]);
  if (inspected.code !== 0) {
    throw new LaunchError(`image ${image} is not on this node (${firstLine(inspected.stderr)}); the node's operator loads it: ${runtime} pull ${image}`);
  }
  if (process.getuid?.() === 0) await chownTree(spec.runDir, context.settings.runAsUid, context.settings.runAsGid);
  const name = containerName(spec.runId, spec.attempt);
  const runtimeDir = path.join(context.runtimesDir, name);
  const envFile = path.join(runtimeDir, "env");
  const envText = envFileText(containerEnv(spec), "oci");
  const cgroup = await memoryCgroup(spec, context, name);
  const cleanUp = async () => {
    await removeContainer(name, context);
    await fs.rm(runtimeDir, { recursive: true, force: true });
    // What podman made below the parent (its monitor's and the container's cgroups, in every hierarchy) first.
    const parent = cgroup?.hierarchyPath("memory");
    if (parent) await removeCgroupTrees(parent);
    await cgroup?.remove();
  };
  let argv: string[];
  try {
    argv = ociRunArgv({
      runtime,
      globalArgs: globalArgs(context, cgroup),
      spec,
      image,
      user: { uid: context.settings.runAsUid, gid: context.settings.runAsGid },
      envFile,
      cgroupParent: cgroup?.hierarchyPath("memory") ?? null,
    });
    await writeRunEnvFile(runtimeDir, envFile, envText);
  } catch (err) {
    await cleanUp();
    throw err instanceof LaunchError ? err : new LaunchError(`cannot write the run's env file: ${toError(err).message}`, { cause: err });
  }
  return { start: () => startContainer(argv, spec, { name, runtimeDir, cgroup }, context), cleanUp };
}

/**
 * podman on a writable memory cgroup: the run's own cgroup becomes the container's parent. podman
 * does not report OOM kills and the container's cgroup is gone when it exits: the parent outlives it
 * (see `reachedMemoryLimit`). The run's limit is the container's own (`--memory`); the parent's is
 * higher by `MONITOR_HEADROOM_MIB`, since podman's monitor lives below it too (`<parent>/conmon`):
 * with the limit on the parent alone, the OOM killer sometimes picked conmon, and podman then
 * lost the container's exit (exit 127, "no such exit code", the container left "running").
 */
async function memoryCgroup(spec: RunSpec, context: ContainerContext, name: string): Promise<RunCgroup | null> {
  if (context.runtime !== "podman" || spec.limits.memoryMiB === null || !context.cgroups.controllers.includes("memory")) return null;
  try {
    return await context.cgroups.create(name, { memoryBytes: (spec.limits.memoryMiB + MONITOR_HEADROOM_MIB) * MIB, pidsMax: null, cpus: null });
  } catch (err) {
    throw new LaunchError(toError(err).message, { cause: err });
  }
}

function globalArgs(context: ContainerContext, cgroup: RunCgroup | null): string[] {
  if (context.runtime !== "podman") return [];
  return [
    ...(context.settings.podmanRuntime === null ? [] : ["--runtime", context.settings.podmanRuntime]),
    // A parent given as a path needs the cgroupfs manager (systemd's takes slice names).
    ...(cgroup === null ? [] : ["--cgroup-manager", "cgroupfs"]),
  ];
}

async function startContainer(
  argv: string[],
  spec: RunSpec,
  run: { name: string; runtimeDir: string; cgroup: RunCgroup | null },
  context: ContainerContext,
): Promise<StartedRun> {
  const { name, runtimeDir, cgroup } = run;
  // In its own directory: podman's monitor (conmon 2.1) writes an `oom` file to its working directory.
  const child = await spawnDetached(context.binary, argv, { cwd: runtimeDir, env: context.runtimeEnv, argv0: context.runtime });
  let exited = false;
  let sentKill = false;
  const disk = watchDisk(spec, () => void signalContainer("SIGKILL"));

  async function signalContainer(signal: NodeJS.Signals): Promise<void> {
    if (signal === "SIGKILL") sentKill = true;
    const deadline = Date.now() + SIGNAL_RETRY_MS;
    for (;;) {
      if (exited) return;
      const result = await runtimeCommand(context, ["kill", "--signal", signal, name]);
      if (result.code === 0 || exited) return;
      // Right after start the container may not exist yet.
      if (Date.now() > deadline) throw new Error(`cannot send ${signal} to container ${name}: ${firstLine(result.stderr)}`);
      await delay(250);
    }
  }

  const exit = child.exited.then(async (raw): Promise<RunExit> => {
    exited = true;
    disk.stop();
    const translated = fromWrapperStatus(raw);
    const oomKilled =
      (await cgroup?.oomKilled()) ||
      (await exists(path.join(runtimeDir, "oom"))) ||
      (translated.signal === "SIGKILL" && !sentKill && (await reachedMemoryLimit(cgroup, spec))) ||
      (await inspectOomKilled(name, context));
    const limitHit = disk.hit() ?? (await limitHitOf(translated, spec, oomKilled));
    const failure = raw.code === null ? undefined : RUNTIME_FAILURES[raw.code];
    const notes = failure ? [`exit ${raw.code} is how ${context.runtime} says it ${failure} (unless the tool itself exited so); its message is above`] : [];
    return { ...translated, limitHit, notes };
  });
  return {
    pid: child.pid,
    stdout: child.stdout,
    stderr: child.stderr,
    tree: { pgid: child.pid },
    signal: (signal) => void signalContainer(signal).catch((err: unknown) => context.log.warn(`run ${spec.runId}#${spec.attempt}: ${toError(err).message}`)),
    wait: () => exit,
    usage: async () => {
      const peak = await cgroup?.peakMemoryBytes();
      return peak == null ? {} : { peakRssBytes: peak };
    },
  };
}

/**
 * Whether the run's memory reached its limit. On cgroup v1 the kernel counts an OOM kill in the
 * victim's cgroup (the container's, gone by now), not in the parent; the parent's peak (the
 * container's and the monitor's) at the limit, within one charge batch, and a SIGKILL the agent did
 * not send tell it instead.
 */
async function reachedMemoryLimit(cgroup: RunCgroup | null, spec: RunSpec): Promise<boolean> {
  const peak = await cgroup?.peakMemoryBytes();
  return peak != null && spec.limits.memoryMiB !== null && peak >= spec.limits.memoryMiB * MIB - MIB;
}

/** docker's own word on an OOM kill (podman answers false even then). */
async function inspectOomKilled(name: string, context: ContainerContext): Promise<boolean> {
  const result = await runtimeCommand(context, ["inspect", "--format", "{{.State.OOMKilled}}", name]);
  return result.code === 0 && result.stdout.trim() === "true";
}

/** Kills and removes the container, if there is one; never throws. */
async function removeContainer(name: string, context: ContainerContext): Promise<void> {
  const result = await runtimeCommand(context, ["rm", "--force", name]);
  if (result.code !== 0 && !/no such container|no container with name/i.test(result.stderr)) {
    context.log.warn(`cannot remove container ${name}: ${firstLine(result.stderr)}`);
  }
}

/** Creates `dir` (and its parents) readable by the agent's user only. */
export async function makePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
}

/** Creates the run's private directory afresh and writes its env file (mode 0600) in it. */
export async function writeRunEnvFile(runtimeDir: string, envFile: string, text: string): Promise<void> {
  await fs.rm(runtimeDir, { recursive: true, force: true });
  await fs.mkdir(runtimeDir, { mode: 0o700 });
  await fs.writeFile(envFile, text, { mode: 0o600, flag: "wx" });
}

const exists = (file: string) => fs.access(file).then(() => true, () => false);

/** Runs the runtime's CLI with `args`; resolves with its exit code and output, never rejects. */
function runtimeCommand(context: ContainerContext, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(context.binary, args, { cwd: context.runtimesDir, env: { ...context.runtimeEnv }, timeout: RUNTIME_COMMAND_TIMEOUT_MS, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err?.message ?? "") });
    });
  });
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}
