/** The launchers this node offers (FEM_LAUNCHERS), created once at start, and the runs' default limits. */
import type { LauncherIsolation } from "../messaging/contracts.js";
import type { AgentConfig } from "./config.js";
import type { Launcher, RunLimits } from "./launcher.js";
import type { AgentLogger } from "./log.js";
import { createProcessLauncher } from "./process-launcher.js";

/** Creates every offered launcher; throws when one cannot work on this machine. */
export async function createLaunchers(config: AgentConfig, _deps: { log: AgentLogger }): Promise<Map<string, Launcher>> {
  const launchers = new Map<string, Launcher>();
  for (const name of config.launchers) if (name === "process") launchers.set(name, createProcessLauncher());
  return launchers;
}

/** Each launcher with the isolation it gives, for the heartbeat. */
export function launcherDetails(launchers: ReadonlyMap<string, Launcher>): { name: string; isolation: LauncherIsolation }[] {
  return [...launchers.values()].map((l) => ({ name: l.name, isolation: l.isolation }));
}

/** The node's default limits of a run: none yet. */
export function nodeRunLimits(_config: AgentConfig): RunLimits {
  return { memoryMiB: null, pidsMax: null, diskMiB: null, cpuSeconds: null };
}
