/**
 * The `sandbox` launcher: each run in bubblewrap with no network (only a private loopback), its
 * directory writable at `/sandbox`, `/usr` and the tool read-only, private `/proc`, `/dev` and `/tmp`,
 * nothing else of the node; its own session and PID namespace (so `setsid` cannot leave the run),
 * killed with the agent, under `FEM_RUN_AS_UID`/`GID` when the agent is root, with the run's limits
 * (cgroup memory and pids where writable, `prlimit` otherwise; a CPU quota where the cgroup `cpu`
 * controller is writable, none otherwise).
 */
import path from "node:path";
import type { LauncherIsolation, RunLimitKind } from "../messaging/contracts.js";
import { toError } from "../shared/index.js";
import type { Cgroups, RunCgroup } from "./cgroups.js";
import { killProcess, killProcessGroup, LaunchError, limitSource, resolveExecutable, type Launcher, type LimitHit, type RunExit, type RunSpec, type StartedRun } from "./launcher.js";
import type { AgentLogger } from "./log.js";
import { spawnDetached, type ProcessExit } from "./process-launcher.js";
import { findPrograms, rootLinkArgs, sandboxArgv, type SandboxPrograms } from "./sandbox-argv.js";
import { fromWrapperStatus, limitHitOf, watchDisk } from "./run-limits.js";
import { chownTree } from "./sandbox.js";
import { descendantPids } from "./usage.js";

const MIB = 1024 * 1024;

export interface SandboxSettings {
  /** uid and gid runs execute as when the agent is root. @default 65534 */
  runAsUid: number;
  runAsGid: number;
}

interface SandboxContext {
  programs: SandboxPrograms;
  settings: SandboxSettings;
  cgroups: Cgroups;
  log: AgentLogger;
  /** True when the agent is root: runs then drop to `runAsUid` (setpriv inside the sandbox). */
  dropPrivileges: boolean;
  /** bwrap arguments recreating /bin, /lib… as on the node. */
  rootArgs: string[];
}

/** Creates the launcher; throws an `Error` saying what to install when bubblewrap or util-linux is missing. */
export async function createSandboxLauncher(
  settings: SandboxSettings,
  deps: { cgroups: Cgroups; searchPath: readonly string[]; log: AgentLogger },
): Promise<Launcher> {
  const programs = await findPrograms(deps.searchPath);
  const context: SandboxContext = {
    programs,
    settings,
    cgroups: deps.cgroups,
    log: deps.log,
    dropPrivileges: process.getuid?.() === 0,
    rootArgs: await rootLinkArgs(),
  };
  return {
    name: "sandbox",
    isolation: sandboxIsolation(context),
    prepare: (spec) => prepareSandboxRun(spec, context),
    reclaim: (runId, attempt) => context.cgroups.reclaim(cgroupName(runId, attempt)),
  };
}

function cgroupName(runId: string, attempt: number): string {
  return `fem-${runId}-${attempt}`;
}

function sandboxIsolation(context: SandboxContext): LauncherIsolation {
  const limits: RunLimitKind[] = ["memory", "disk", "cpuTime"];
  // RLIMIT_NPROC binds nothing for root; without a pids cgroup it needs the drop to another uid.
  if (context.cgroups.controllers.includes("pids") || context.dropPrivileges || process.getuid?.() !== 0) limits.splice(1, 0, "pids");
  if (context.cgroups.controllers.includes("cpu")) limits.push("cpus");
  return { network: "none", filesystem: "private", pidNamespace: true, separateUser: context.dropPrivileges, killedWithAgent: true, limits };
}

async function prepareSandboxRun(spec: RunSpec, context: SandboxContext) {
  const [argv0 = ""] = spec.argv;
  const executable = await resolveExecutable(argv0, spec.runDir, spec.searchPath);
  // env(1) would take such a path for a variable (see sandboxArgv).
  if (executable.includes("=")) throw new LaunchError(`cannot start "${argv0}": the sandbox launcher runs no executable whose path holds "=" (${executable})`);
  if (context.dropPrivileges) await chownTree(spec.runDir, context.settings.runAsUid, context.settings.runAsGid);
  let cgroup: RunCgroup | null;
  try {
    cgroup = await context.cgroups.create(cgroupName(spec.runId, spec.attempt), {
      memoryBytes: spec.limits.memoryMiB === null ? null : spec.limits.memoryMiB * MIB,
      pidsMax: spec.limits.pidsMax,
      cpus: spec.limits.cpus,
    });
  } catch (err) {
    throw new LaunchError(toError(err).message, { cause: err });
  }
  const argv = sandboxArgv({ ...context, spec, executable, cgroup });
  return {
    start: () => startSandboxRun(argv, spec, cgroup, context.log),
    cleanUp: async () => cgroup?.remove(),
  };
}

async function startSandboxRun(argv: string[], spec: RunSpec, cgroup: RunCgroup | null, log: AgentLogger): Promise<StartedRun> {
  const [file = "", ...args] = argv;
  const child = await spawnDetached(file, args, { env: {}, argv0: path.basename(file) });
  let exited = false;
  const disk = watchDisk(spec, () => void signalRun("SIGKILL"));

  async function signalRun(signal: NodeJS.Signals): Promise<void> {
    // bwrap and its PID 1 are depth 0 and 1; the tool's processes are below, in sessions of their own.
    const targets = exited ? [] : (await descendantPids(child.pid)).filter((p) => p.depth >= 2).map((p) => p.pid);
    const problems: string[] = [];
    const attempt = (kill: () => unknown) => {
      try {
        kill();
      } catch (err) {
        problems.push(toError(err).message);
      }
    };
    for (const pid of [...targets, ...((await cgroup?.pids()) ?? [])]) if (pid !== child.pid) attempt(() => killProcess(pid, signal));
    // bwrap's death takes the whole PID namespace with it.
    if (signal === "SIGKILL" && !exited) attempt(() => killProcessGroup(child.pid, "SIGKILL"));
    if (problems.length > 0) throw new Error(`cannot signal the whole run: ${problems.join("; ")}`);
  }

  const exit = child.exited.then(async (raw): Promise<RunExit> => {
    exited = true;
    disk.stop();
    const translated = fromWrapperStatus(raw);
    const pidsHits = (await cgroup?.pidsLimitHits()) ?? 0;
    const notes = pidsHits > 0 ? [`a new process was refused ${pidsHits} time(s) at the process limit of ${spec.limits.pidsMax} (${limitSource(spec.limits, "pidsMax")})`] : [];
    const limitHit = disk.hit() ?? (await limitHitOf(translated, spec, (await cgroup?.oomKilled()) ?? false)) ?? pidsLimitOf(translated, spec, pidsHits);
    return { ...translated, limitHit, notes };
  });
  return {
    pid: child.pid,
    stdout: child.stdout,
    stderr: child.stderr,
    tree: { descendantsOf: child.pid },
    signal: (signal) => void signalRun(signal).catch((err: unknown) => log.warn(`run ${spec.runId}#${spec.attempt}: ${toError(err).message}`)),
    wait: () => exit,
    usage: async () => {
      const peak = await cgroup?.peakMemoryBytes();
      return peak == null ? {} : { peakRssBytes: peak };
    },
  };
}

function pidsLimitOf(exit: ProcessExit, spec: RunSpec, pidsHits: number): LimitHit | null {
  if (pidsHits === 0 || (exit.code === 0 && exit.signal === null)) return null;
  return { kind: "pids", message: `reached the process limit of ${spec.limits.pidsMax} (${limitSource(spec.limits, "pidsMax")})` };
}
