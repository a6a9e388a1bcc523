/**
 * What a run gets from the node besides its argv: its environment and its limits. The one place
 * each is composed, whatever the launcher.
 */
import type { RunDispatch } from "../messaging/contracts.js";
import type { RunLimits } from "./launcher.js";
import { buildRunEnv, type NodeSecrets } from "./secrets.js";

/** The run's whole environment: the tool's `env` as dispatched with its node secrets resolved, nothing of the agent's. */
export function runEnvironment(dispatch: RunDispatch, secrets: NodeSecrets): Record<string, string> {
  return buildRunEnv(dispatch.env, secrets);
}

/**
 * The limits of one run. Today the node's defaults (FEM_RUN_*) for every run; when dispatches carry
 * a task's resource requests, they are checked against and merged with the defaults here.
 */
export function runLimitsFor(_dispatch: RunDispatch, nodeDefaults: RunLimits): RunLimits {
  return { ...nodeDefaults };
}
