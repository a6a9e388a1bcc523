/**
 * The `process` launcher: starts an argv (never through a shell) as the leader of its own process
 * group, so the whole tree can be signalled at once.
 */
import { spawn } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { errorCode, toError } from "../shared/index.js";

/** The executable could not be started; the message names it. */
export class LaunchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LaunchError";
  }
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchedProcess {
  /** Also the process group id. */
  pid: number;
  stdout: Readable;
  stderr: Readable;
  /** Resolves when the main process exited (its output may still be open). */
  exited: Promise<ProcessExit>;
}

export interface LaunchSpec {
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
  /** Where an `argv[0]` without a slash is looked up: the agent's PATH, not the run's. */
  searchPath: readonly string[];
}

/** Starts the run's main process; throws `LaunchError` when it cannot be started. */
export async function launchProcess(spec: LaunchSpec): Promise<LaunchedProcess> {
  const [argv0 = "", ...args] = spec.argv;
  const executable = await resolveExecutable(argv0, spec.cwd, spec.searchPath);
  const child = spawn(executable, args, {
    cwd: spec.cwd,
    env: { ...spec.env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    argv0,
  });
  const exited = new Promise<ProcessExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (err) => reject(new LaunchError(`cannot start "${argv0}" (${executable}): ${toError(err).message}`, { cause: err })));
  });
  if (child.pid === undefined || !child.stdout || !child.stderr) throw new LaunchError(`cannot start "${argv0}": no process id`);
  return { pid: child.pid, stdout: child.stdout, stderr: child.stderr, exited };
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
