/**
 * The node's datasets as runs meet them: what the heartbeat reports (never a path), the check a
 * dispatch passes, the `{ name, path }` list a launcher gets, and the `FEM_DATASET_<NAME>` variables
 * telling a run where each of its datasets is.
 */
import type { DatasetInfo, RunDispatch } from "../messaging/contracts.js";
import type { RunDataset } from "./launcher.js";
import type { NodeDataset } from "./policy.js";

/** Where the sandbox launchers mount a run's datasets: `/data/<name>`, read-only. */
export const DATASETS_IN_SANDBOX = "/data";

/** The datasets as the heartbeat reports them: names, descriptions and labels, no path. */
export function datasetInfos(datasets: readonly NodeDataset[]): DatasetInfo[] {
  return datasets.map((d) => ({ name: d.name, description: d.description, labels: d.labels }));
}

/** Null when the node holds every dataset the dispatch names; otherwise which one it lacks. */
export function datasetsProblem(dispatch: RunDispatch, datasets: readonly NodeDataset[], nodeId: string): string | null {
  const missing = (dispatch.datasets ?? []).filter((name) => !datasets.some((d) => d.name === name));
  if (missing.length === 0) return null;
  const list = missing.map((name) => `"${name}"`).join(", ");
  return `dataset${missing.length === 1 ? "" : "s"} ${list} ${missing.length === 1 ? "is" : "are"} not on node ${nodeId} (FEM_POLICY_FILE datasets)`;
}

/** The datasets the dispatch names, with their paths on the node; those the node lacks are left out (see `datasetsProblem`). */
export function runDatasets(dispatch: RunDispatch, datasets: readonly NodeDataset[]): RunDataset[] {
  return (dispatch.datasets ?? []).flatMap((name) => datasets.filter((d) => d.name === name).map((d) => ({ name, path: d.path })));
}

/** `FEM_DATASET_<NAME>` (hyphens as underscores) → where the run sees the dataset. */
export function datasetEnv(datasets: readonly RunDataset[], seenAt: (dataset: RunDataset) => string): Record<string, string> {
  return Object.fromEntries(datasets.map((d) => [`FEM_DATASET_${d.name.toUpperCase().replaceAll("-", "_")}`, seenAt(d)]));
}
