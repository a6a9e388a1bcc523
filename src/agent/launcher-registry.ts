/** The launchers this node offers (FEM_LAUNCHERS), created once at start, and the runs' default limits. */
import type { LauncherIsolation } from "../messaging/contracts.js";
import { detectCgroups } from "./cgroups.js";
import type { AgentConfig } from "./config.js";
import type { Launcher, RunLimits } from "./launcher.js";
import type { AgentLogger } from "./log.js";
import { createProcessLauncher } from "./process-launcher.js";
import { createSandboxLauncher } from "./sandbox-launcher.js";

/** Creates every offered launcher; throws when one cannot work on this machine (bubblewrap missing, say). */
export async function createLaunchers(config: AgentConfig, deps: { log: AgentLogger }): Promise<Map<string, Launcher>> {
  const launchers = new Map<string, Launcher>();
  for (const name of config.launchers) {
    if (name === "process") launchers.set(name, createProcessLauncher());
    if (name === "sandbox") {
      const cgroups = await detectCgroups();
      const launcher = await createSandboxLauncher(
        { runAsUid: config.runAsUid, runAsGid: config.runAsGid },
        { cgroups, searchPath: config.executableSearchPath, log: deps.log },
      );
      const how = cgroups.version === "none" ? "prlimit only (no writable cgroup)" : `cgroup ${cgroups.version} ${cgroups.controllers.join(" and ")}, prlimit for the rest`;
      deps.log.info(`sandbox launcher: bubblewrap, ${launcher.isolation.separateUser ? `runs as uid ${config.runAsUid}` : "runs as the agent's uid"}; limits by ${how}`);
      launchers.set(name, launcher);
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
    // No node-wide CPU quota: only a task's cpus request sets one.
    cpus: null,
  };
}
