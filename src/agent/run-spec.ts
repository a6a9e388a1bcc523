/**
 * What a run gets from the node besides its argv: its environment and its limits. The one place
 * each is composed, whatever the launcher.
 */
import type { RunDispatch, RunLimitKind } from "../messaging/contracts.js";
import type { RunLimitName, RunLimits } from "./launcher.js";
import { buildRunEnv, type NodeSecrets } from "./secrets.js";

/** The run's whole environment: the tool's `env` as dispatched with its node secrets resolved, nothing of the agent's. */
export function runEnvironment(dispatch: RunDispatch, secrets: NodeSecrets): Record<string, string> {
  return buildRunEnv(dispatch.env, secrets);
}

/**
 * The limits of one run: the node's defaults (FEM_RUN_*), made stricter by the task's requests
 * where the dispatch carries them: `memoryMiB` → memory limit, `diskMiB` → disk limit, `cpus` →
 * CPU quota; where both exist, the smaller wins. `sources` says which gave each limit.
 */
export function runLimitsFor(dispatch: RunDispatch, nodeDefaults: RunLimits): RunLimits {
  const limits: RunLimits = { ...nodeDefaults, sources: { ...nodeDefaults.sources } };
  const requested: [RunLimitName, number | undefined][] = [
    ["memoryMiB", dispatch.resources?.memoryMiB],
    ["diskMiB", dispatch.resources?.diskMiB],
    ["cpus", dispatch.resources?.cpus],
  ];
  for (const [name, value] of requested) {
    const current = limits[name] as number | null;
    if (value === undefined || (current !== null && current <= value)) continue;
    limits[name] = value;
    limits.sources![name] = `the task's ${name} request`;
  }
  return limits;
}

/** The limit kind that enforces each request (gpus only place runs). */
const ENFORCED_BY: Partial<Record<keyof NonNullable<RunDispatch["resources"]>, RunLimitKind>> = { memoryMiB: "memory", diskMiB: "disk", cpus: "cpus" };

/** A SYSTEM note naming the task's requests that `launcher` (enforcing `enforced`) does not turn into limits, or null. */
export function unenforcedRequestsNote(dispatch: RunDispatch, launcher: string, enforced: readonly RunLimitKind[]): string | null {
  const missing = Object.entries(ENFORCED_BY)
    .filter(([request, kind]) => dispatch.resources?.[request as keyof typeof ENFORCED_BY] !== undefined && !enforced.includes(kind))
    .map(([request]) => request);
  return missing.length === 0 ? null : `the ${launcher} launcher on this node does not enforce the task's ${missing.join(", ")} request(s): they only placed the run`;
}
