/**
 * The `process` launcher: starts an argv (never through a shell) as the leader of its own process
 * group, so the whole tree can be signalled at once. It isolates nothing else: the run has the
 * agent user's files, network and resources, and enforces no limits. Its datasets are not mounted
 * but named by their paths on the node in `FEM_DATASET_<NAME>`: nothing keeps the run from reading
 * the node's other datasets, or anything else the agent's user may read.
 */
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import type { LauncherIsolation } from "../messaging/contracts.js";
import { toError } from "../shared/index.js";
import { datasetEnv } from "./datasets.js";
import { killProcessGroup, LaunchError, resolveExecutable, type Launcher, type RunExit, type RunSpec, type StartedRun } from "./launcher.js";

export const PROCESS_ISOLATION: LauncherIsolation = {
  network: "host",
  filesystem: "shared",
  pidNamespace: false,
  separateUser: false,
  killedWithAgent: false,
  limits: [],
};

export function createProcessLauncher(): Launcher {
  return {
    name: "process",
    isolation: PROCESS_ISOLATION,
    async prepare(spec) {
      return { start: () => startProcess(spec), cleanUp: async () => undefined };
    },
    reclaim: async () => undefined,
  };
}

async function startProcess(spec: RunSpec): Promise<StartedRun> {
  const [argv0 = ""] = spec.argv;
  const executable = await resolveExecutable(argv0, spec.runDir, spec.searchPath);
  const env = { ...spec.env, ...datasetEnv(spec.datasets, (d) => d.path) };
  const child = await spawnDetached(executable, spec.argv.slice(1), { cwd: spec.runDir, env, argv0 });
  return {
    ...child,
    tree: { pgid: child.pid },
    signal: (signal) => void killProcessGroup(child.pid, signal),
    wait: async () => ({ ...(await child.exited), limitHit: null, notes: [] }),
    usage: async () => ({}),
  };
}

export type ProcessExit = Pick<RunExit, "code" | "signal">;

export interface SpawnedChild {
  pid: number;
  stdout: Readable;
  stderr: Readable;
  exited: Promise<ProcessExit>;
}

/**
 * Spawns `file` as the leader of a new process group with stdout and stderr piped; throws
 * `LaunchError` (naming `argv0`) when it cannot be started.
 */
export async function spawnDetached(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env: Readonly<Record<string, string>>; argv0: string },
): Promise<SpawnedChild> {
  const child = spawn(file, args, { cwd: options.cwd, env: { ...options.env }, detached: true, stdio: ["ignore", "pipe", "pipe"], argv0: options.argv0 });
  const exited = new Promise<ProcessExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (err) => reject(new LaunchError(`cannot start "${options.argv0}" (${file}): ${toError(err).message}`, { cause: err })));
  });
  if (child.pid === undefined || !child.stdout || !child.stderr) throw new LaunchError(`cannot start "${options.argv0}": no process id`);
  return { pid: child.pid, stdout: child.stdout, stderr: child.stderr, exited };
}
