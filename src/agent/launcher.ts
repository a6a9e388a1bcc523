/**
 * What the run code needs of a launcher: prepare a run, start it, signal all of it, wait for it,
 * read its usage and clean up. Each launcher declares the isolation it gives, which the heartbeat
 * reports. Implementations: `process-launcher.ts`, `sandbox-launcher.ts` (bubblewrap),
 * `container-launcher.ts` (podman, docker) and `apptainer-launcher.ts` (singularity, apptainer).
 */
import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import type { LauncherIsolation, RunLimitKind } from "../messaging/contracts.js";
import { errorCode, toError } from "../shared/index.js";
import type { TreeSelector, TreeUsage } from "./usage.js";

/** The run could not be started (or prepared); the message says why. */
export class LaunchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LaunchError";
  }
}

/**
 * Limits one run gets; null means none: the node's defaults (FEM_RUN_*) merged with the task's
 * resource requests in `runLimitsFor` (src/agent/run-spec.ts).
 */
export interface RunLimits {
  memoryMiB: number | null;
  pidsMax: number | null;
  /** Largest file the run may write (RLIMIT_FSIZE) and the most its directory may hold. */
  diskMiB: number | null;
  cpuSeconds: number | null;
  /** CPUs the run may use at once, fractions allowed: a cgroup `cpu` quota where writable, `--cpus` for containers; from FEM_RUN_CPUS or the task's `cpus` request. */
  cpus: number | null;
  /** Where a limit came from, for messages (`FEM_RUN_MEMORY_MIB`, "the task's memoryMiB request"); a node setting when absent. */
  sources?: Partial<Record<RunLimitName, string>>;
}

export type RunLimitName = "memoryMiB" | "pidsMax" | "diskMiB" | "cpuSeconds" | "cpus";

/** The node setting each default limit comes from. */
export const NODE_LIMIT_SETTINGS: Record<RunLimitName, string> = {
  memoryMiB: "FEM_RUN_MEMORY_MIB",
  pidsMax: "FEM_RUN_PIDS_MAX",
  diskMiB: "FEM_RUN_DISK_MIB",
  cpuSeconds: "FEM_RUN_CPU_SECONDS",
  cpus: "FEM_RUN_CPUS",
};

/** Where `limits` got its `name` limit, for a run's message. */
export function limitSource(limits: RunLimits, name: RunLimitName): string {
  return limits.sources?.[name] ?? NODE_LIMIT_SETTINGS[name];
}

/** A dataset of the node that the run reads: mounted read-only where the launcher can isolate. */
export interface RunDataset {
  name: string;
  /** Absolute path on the node. */
  path: string;
}

export interface RunSpec {
  runId: string;
  attempt: number;
  argv: readonly string[];
  /** The container image the tool names (container launchers only; they refuse one not pinned by digest). */
  image: string | null;
  /** The run's whole environment, as `runEnvironment` composed it. */
  env: Readonly<Record<string, string>>;
  /** The run's directory on the node (absolute). */
  runDir: string;
  /** Where an `argv[0]` without a slash is looked up: the agent's PATH, not the run's. */
  searchPath: readonly string[];
  limits: RunLimits;
  /** The node's datasets the run asked for (the dispatch's `datasets`); none of the others. */
  datasets: readonly RunDataset[];
}

export interface RunExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** A limit the launcher saw the run hit (the cause of its end, when it was killed for it). */
  limitHit: LimitHit | null;
  /** What else the launcher saw, for the run's SYSTEM log lines. */
  notes: string[];
}

export interface LimitHit {
  kind: RunLimitKind;
  /** For the run's message and log: which limit, and its value with the setting that gave it. */
  message: string;
}

export interface StartedRun {
  /** The process the agent started; what the journal records to kill leftovers after a crash (as a group). */
  pid: number;
  stdout: Readable;
  stderr: Readable;
  /** Which processes the usage sampler follows. */
  tree: TreeSelector;
  /** Signals every process of the run; throws only when signalling fails for another reason than "gone". */
  signal(signal: NodeJS.Signals): void;
  /** Resolves when the run's main process exited (its output may still be open); never rejects. */
  wait(): Promise<RunExit>;
  /** Figures the launcher measures itself (a cgroup's peak memory), merged with the sampler's. */
  usage(): Promise<Partial<TreeUsage>>;
}

export interface PreparedRun {
  /** Starts the run; throws `LaunchError` when it cannot be started. */
  start(): Promise<StartedRun>;
  /** Releases what `prepare` and the run held (cgroups); safe to call twice and after a failed start. */
  cleanUp(): Promise<void>;
}

export interface Launcher {
  name: string;
  isolation: LauncherIsolation;
  /** Gets a run ready to start (its cgroup, the ownership of its directory); throws `LaunchError`. */
  prepare(spec: RunSpec): Promise<PreparedRun>;
  /** Releases what a run of a previous agent process may have left behind (its cgroups); never throws. */
  reclaim(runId: string, attempt: number): Promise<void>;
}

/** Finds the file `argv0` names: a path (relative to `cwd`) when it has a slash, else a PATH lookup. */
export async function resolveExecutable(argv0: string, cwd: string, searchPath: readonly string[]): Promise<string> {
  if (argv0 === "") throw new LaunchError("argv[0] is empty: no executable to start");
  if (argv0.includes("/")) {
    const candidate = path.resolve(cwd, argv0);
    const problem = await executableProblem(candidate);
    if (problem) throw new LaunchError(`cannot start "${argv0}": ${problem}`);
    return candidate;
  }
  for (const dir of searchPath) {
    const candidate = path.resolve(dir, argv0);
    if ((await executableProblem(candidate)) === null) return candidate;
  }
  throw new LaunchError(`cannot start "${argv0}": not found in the agent's PATH (${searchPath.join(path.delimiter) || "empty"})`);
}

async function executableProblem(file: string): Promise<string | null> {
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) return `${file} is not a regular file`;
    await fs.access(file, fsConstants.X_OK);
    return null;
  } catch (err) {
    const code = errorCode(err);
    if (code === "ENOENT" || code === "ENOTDIR") return `${file} does not exist`;
    if (code === "EACCES") return `${file} is not executable`;
    return `${file}: ${toError(err).message}`;
  }
}

/** Signals every process of the group; returns false when the group no longer exists. */
export function killProcessGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if (errorCode(err) === "ESRCH") return false;
    throw new Error(`cannot signal process group ${pgid}`, { cause: toError(err) });
  }
}

/** Signals one process; false when it is gone. */
export function killProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if (errorCode(err) === "ESRCH") return false;
    throw new Error(`cannot signal process ${pid}`, { cause: toError(err) });
  }
}
