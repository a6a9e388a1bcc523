/**
 * The `sandbox` launcher: each run in bubblewrap with no network (only a private loopback), its
 * directory writable at `/sandbox`, `/usr` and the tool read-only, private `/proc`, `/dev` and `/tmp`,
 * nothing else of the node; its own session and PID namespace (so `setsid` cannot leave the run),
 * killed with the agent, under `FEM_RUN_AS_UID`/`GID` when the agent is root, with the run's limits
 * (cgroup memory and pids where writable, `prlimit` otherwise; a CPU quota where the cgroup `cpu`
 * controller is writable, none otherwise).
 */
import fs from "node:fs/promises";
import { constants as osConstants } from "node:os";
import path from "node:path";
import type { LauncherIsolation, RunLimitKind } from "../messaging/contracts.js";
import { toError } from "../shared/index.js";
import type { Cgroups, RunCgroup } from "./cgroups.js";
import { killProcess, killProcessGroup, LaunchError, limitSource, resolveExecutable, type Launcher, type LimitHit, type RunExit, type RunSpec, type StartedRun } from "./launcher.js";
import type { AgentLogger } from "./log.js";
import { spawnDetached, type ProcessExit } from "./process-launcher.js";
import { findPrograms, rootLinkArgs, sandboxArgv, type SandboxPrograms } from "./sandbox-argv.js";
import { measureOutputBytes } from "./sandbox.js";
import { descendantPids } from "./usage.js";

/** How often the run directory's size is checked against the disk limit. */
const DISK_CHECK_INTERVAL_MS = 1_000;
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
  let diskHit: LimitHit | null = null;
  const diskLimitBytes = spec.limits.diskMiB === null ? null : spec.limits.diskMiB * MIB;
  const diskMessage = `reached the disk limit of ${spec.limits.diskMiB} MiB (${limitSource(spec.limits, "diskMiB")})`;
  const diskTimer =
    diskLimitBytes === null
      ? undefined
      : setInterval(() => {
          void measureOutputBytes(spec.runDir).then((bytes) => {
            if (exited || diskHit || bytes <= diskLimitBytes) return;
            diskHit = { kind: "disk", message: `${diskMessage}: its directory holds ${bytes} bytes` };
            void signalRun("SIGKILL");
          });
        }, DISK_CHECK_INTERVAL_MS);

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
    clearInterval(diskTimer);
    const translated = fromBwrapStatus(raw);
    const pidsHits = (await cgroup?.pidsLimitHits()) ?? 0;
    const notes = pidsHits > 0 ? [`a new process was refused ${pidsHits} time(s) at the process limit of ${spec.limits.pidsMax} (${limitSource(spec.limits, "pidsMax")})`] : [];
    const limitHit = diskHit ?? (await limitOf(translated, spec, cgroup, diskLimitBytes, diskMessage)) ?? pidsLimitOf(translated, spec, pidsHits);
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

/** bwrap exits with 128 + N when the tool was killed by signal N. */
function fromBwrapStatus(exit: ProcessExit): ProcessExit {
  if (exit.code === null || exit.code <= 128 || exit.code >= 128 + 65) return exit;
  const name = Object.entries(osConstants.signals).find(([, number]) => number === exit.code! - 128)?.[0];
  return name ? { code: exit.code, signal: name as NodeJS.Signals } : exit;
}

async function limitOf(
  exit: ProcessExit,
  spec: RunSpec,
  cgroup: RunCgroup | null,
  diskLimitBytes: number | null,
  diskMessage: string,
): Promise<LimitHit | null> {
  const { memoryMiB, cpuSeconds } = spec.limits;
  if (memoryMiB !== null && (await cgroup?.oomKilled())) return { kind: "memory", message: `exceeded the memory limit of ${memoryMiB} MiB (${limitSource(spec.limits, "memoryMiB")})` };
  if (exit.signal === "SIGXCPU" && cpuSeconds !== null) return { kind: "cpuTime", message: `exceeded the CPU time limit of ${cpuSeconds} s (${limitSource(spec.limits, "cpuSeconds")})` };
  if (diskLimitBytes === null || (exit.code === 0 && exit.signal === null)) return null;
  // A file that reached RLIMIT_FSIZE stops at exactly the limit; a tool that ignores SIGXFSZ then fails with EFBIG.
  if (exit.signal === "SIGXFSZ" || (await measureOutputBytes(spec.runDir)) >= diskLimitBytes) return { kind: "disk", message: diskMessage };
  return null;
}

function pidsLimitOf(exit: ProcessExit, spec: RunSpec, pidsHits: number): LimitHit | null {
  if (pidsHits === 0 || (exit.code === 0 && exit.signal === null)) return null;
  return { kind: "pids", message: `reached the process limit of ${spec.limits.pidsMax} (${limitSource(spec.limits, "pidsMax")})` };
}

/** Gives the run's directory (and what the agent put in it) to the uid the run executes as. */
async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await fs.lchown(dir, uid, gid);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(full, uid, gid);
    else await fs.lchown(full, uid, gid);
  }
}
