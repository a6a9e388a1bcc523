/** The launchers this node offers (FEM_LAUNCHERS), created once at start, and the runs' default limits. */
import path from "node:path";
import type { LauncherIsolation } from "../messaging/contracts.js";
import { createApptainerLauncher } from "./apptainer-launcher.js";
import { detectCgroups, type Cgroups } from "./cgroups.js";
import type { AgentConfig } from "./config.js";
import { createContainerLauncher, findRuntime } from "./container-launcher.js";
import type { Launcher, RunLimits } from "./launcher.js";
import type { AgentLogger } from "./log.js";
import { createProcessLauncher } from "./process-launcher.js";
import { createSandboxLauncher } from "./sandbox-launcher.js";

/** What to install for each container runtime, in the one-line error when it is missing. */
const RUNTIME_INSTALL = {
  podman: "apt-get install podman",
  docker: "apt-get install docker.io",
  singularity: "install SingularityCE; it is not packaged on Debian",
  apptainer: "install Apptainer; it is not packaged on Debian",
} as const;

/** Creates every offered launcher; throws when one cannot work on this machine (bubblewrap or podman missing, say). */
export async function createLaunchers(config: AgentConfig, deps: { log: AgentLogger }): Promise<Map<string, Launcher>> {
  const launchers = new Map<string, Launcher>();
  let cgroups: Cgroups | null = null;
  const detected = async () => (cgroups ??= await detectCgroups());
  const runAs = { runAsUid: config.runAsUid, runAsGid: config.runAsGid };
  // The runtime's CLI gets the agent's PATH and nothing else: the run's environment goes through a file.
  const runtimeEnv = { PATH: config.executableSearchPath.join(path.delimiter) };
  const runtimesDir = path.join(config.sandboxDir, "containers");
  for (const name of config.launchers) {
    if (name === "process") launchers.set(name, createProcessLauncher());
    if (name === "sandbox") {
      const found = await detected();
      const launcher = await createSandboxLauncher(runAs, { cgroups: found, searchPath: config.executableSearchPath, log: deps.log });
      const how = found.version === "none" ? "prlimit only (no writable cgroup)" : `cgroup ${found.version} ${found.controllers.join(" and ")}, prlimit for the rest`;
      deps.log.info(`sandbox launcher: bubblewrap, ${launcher.isolation.separateUser ? `runs as uid ${config.runAsUid}` : "runs as the agent's uid"}; limits by ${how}`);
      launchers.set(name, launcher);
    }
    if (name === "podman" || name === "docker") {
      const binary = await findRuntime(name, config.executableSearchPath, RUNTIME_INSTALL[name]);
      const settings = { ...runAs, podmanRuntime: config.podmanRuntime };
      launchers.set(name, await createContainerLauncher(name, settings, { cgroups: await detected(), log: deps.log, binary, runtimesDir, runtimeEnv }));
      deps.log.info(`${name} launcher: ${binary}, runs as uid ${config.runAsUid}, images pinned by digest only`);
    }
    if (name === "singularity" || name === "apptainer") {
      const binary = await findRuntime(name, config.executableSearchPath, RUNTIME_INSTALL[name]);
      launchers.set(name, await createApptainerLauncher({ runtime: name, binary, settings: runAs, runtimesDir, runtimeEnv }));
    }
  }
  return launchers;
}

/** Each launcher with the isolation it gives, for the heartbeat. */
export function launcherDetails(launchers: ReadonlyMap<string, Launcher>): { name: string; isolation: LauncherIsolation }[] {
  return [...launchers.values()].map((l) => ({ name: l.name, isolation: l.isolation }));
}

/** The node's default limits of a run (0 in a setting means none). */
export function nodeRunLimits(config: AgentConfig): RunLimits {
  const orNull = (value: number) => (value === 0 ? null : value);
  return {
    memoryMiB: orNull(config.runMemoryMiB),
    pidsMax: orNull(config.runPidsMax),
    diskMiB: orNull(config.runDiskMiB),
    cpuSeconds: orNull(config.runCpuSeconds),
    // FEM_RUN_CPUS (0: none) caps every run; a task's cpus request may set a stricter one.
    cpus: orNull(config.runCpus),
  };
}
