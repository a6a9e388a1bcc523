/**
 * The `singularity` and `apptainer` launchers: `exec` of the tool's image (pinned by digest) with
 * the same isolation as the OCI runtimes (`apptainerExecArgv`), the run's environment from a 0600
 * file outside its directory, and the process group signalled as a whole. Neither runtime is
 * packaged on Debian: only the argv is tested (test/unit/container-argv.test.ts).
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { LauncherIsolation } from "../messaging/contracts.js";
import { toError } from "../shared/index.js";
import { apptainerExecArgv, containerEnv, containerName, envFileText, imageProblem, type ApptainerRuntime } from "./container-argv.js";
import { makePrivateDir, writeRunEnvFile } from "./container-launcher.js";
import { killProcessGroup, LaunchError, type Launcher, type RunSpec, type StartedRun } from "./launcher.js";
import { spawnDetached } from "./process-launcher.js";
import { fromWrapperStatus, limitHitOf } from "./run-limits.js";
import { chownTree } from "./sandbox.js";

export interface ApptainerContext {
  runtime: ApptainerRuntime;
  binary: string;
  settings: { runAsUid: number; runAsGid: number };
  /** Directory (created mode 0700) with one private directory per run, outside every run's directory. */
  runtimesDir: string;
  runtimeEnv: Readonly<Record<string, string>>;
}

export async function createApptainerLauncher(context: ApptainerContext): Promise<Launcher> {
  await makePrivateDir(context.runtimesDir);
  const dropPrivileges = process.getuid?.() === 0;
  const isolation: LauncherIsolation = {
    network: "none",
    filesystem: "private",
    pidNamespace: true,
    separateUser: dropPrivileges || process.getuid?.() !== 0,
    killedWithAgent: false,
    limits: ["memory", "pids", "cpus"],
  };
  return {
    name: context.runtime,
    isolation,
    prepare: (spec) => prepareApptainerRun(spec, context, dropPrivileges),
    reclaim: async (runId, attempt) => fs.rm(runtimeDirOf(context, runId, attempt), { recursive: true, force: true }),
  };
}

function runtimeDirOf(context: ApptainerContext, runId: string, attempt: number): string {
  return path.join(context.runtimesDir, containerName(runId, attempt));
}

async function prepareApptainerRun(spec: RunSpec, context: ApptainerContext, dropPrivileges: boolean) {
  const problem = imageProblem(spec.image, context.runtime);
  if (problem !== null) throw new LaunchError(problem);
  if (dropPrivileges) await chownTree(spec.runDir, context.settings.runAsUid, context.settings.runAsGid);
  const runtimeDir = runtimeDirOf(context, spec.runId, spec.attempt);
  const envFile = path.join(runtimeDir, "env");
  const user = { uid: context.settings.runAsUid, gid: context.settings.runAsGid };
  const argv = apptainerExecArgv({ spec, image: spec.image!, user, dropPrivileges, envFile });
  try {
    await writeRunEnvFile(runtimeDir, envFile, envFileText(containerEnv(spec), "shell"));
  } catch (err) {
    await fs.rm(runtimeDir, { recursive: true, force: true });
    throw err instanceof LaunchError ? err : new LaunchError(`cannot write the run's env file: ${toError(err).message}`, { cause: err });
  }
  return {
    start: () => startApptainer(argv, spec, runtimeDir, context),
    cleanUp: () => fs.rm(runtimeDir, { recursive: true, force: true }),
  };
}

async function startApptainer(argv: string[], spec: RunSpec, runtimeDir: string, context: ApptainerContext): Promise<StartedRun> {
  const child = await spawnDetached(context.binary, argv, { cwd: runtimeDir, env: context.runtimeEnv, argv0: context.runtime });
  return {
    ...child,
    tree: { pgid: child.pid },
    signal: (signal) => void killProcessGroup(child.pid, signal),
    wait: async () => {
      const exit = fromWrapperStatus(await child.exited);
      // Without the runtime's word on OOM kills, only the CPU time and disk limits are told apart.
      return { ...exit, limitHit: await limitHitOf(exit, spec, false), notes: [] };
    },
    usage: async () => ({}),
  };
}
