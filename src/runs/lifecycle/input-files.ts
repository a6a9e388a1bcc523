/**
 * The files each run takes from its upstream tasks: the artifacts of the latest SUCCEEDED run of
 * each upstream task named in the task's `inputs`, on every node, whose path matches the input's
 * pattern. What a dispatch names (and signs), and what a node may fetch for that run.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import picomatch from "picomatch";
import { json, query } from "../../db/sql.js";
import type { RunInputFile } from "../../messaging/contracts.js";

/** An input file with the state and reason of its artifact. */
export interface RunInputFileState extends RunInputFile {
  state: string;
  reason: string | null;
}

interface Row {
  run_id: string;
  inputs: { from: string; files: string }[];
  from_key: string;
  node_id: string;
  artifact_id: string;
  path: string;
  size_bytes: string | number | null;
  sha256: string | null;
  state: string;
  reason: string | null;
}

/** The input files of each run of `runIds` (runs that take none are absent), in task, node and path order. */
export async function inputFilesOfRuns(em: EntityManager, runIds: readonly string[]): Promise<Map<string, RunInputFileState[]>> {
  const result = new Map<string, RunInputFileState[]>();
  if (runIds.length === 0) return result;
  const rows = await query<Row>(
    em,
    `select r.id as run_id, t.inputs, ut.key as from_key, ur.node_id, a.id as artifact_id, a.path, a.size_bytes, a.sha256, a.state, a.reason
     from run r join task t on t.id = r.task_id
     join task ut on ut.workflow_id = t.workflow_id and ut.key in (select i->>'from' from jsonb_array_elements(t.inputs) i)
     join run ur on ur.task_id = ut.id and ur.state = 'SUCCEEDED'
       and ur.attempt = (select max(x.attempt) from run x where x.task_id = ur.task_id and x.node_id = ur.node_id)
     join artifact a on a.run_id = ur.id
     where r.id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) and jsonb_array_length(t.inputs) > 0
     order by r.id, ut.key, ur.node_id, a.path`,
    [json([...new Set(runIds)])],
  );
  const matchers = new Map<string, (path: string) => boolean>();
  const matcherOf = (files: string) => {
    let isMatch = matchers.get(files);
    if (!isMatch) matchers.set(files, (isMatch = picomatch(files, { dot: true })));
    return isMatch;
  };
  for (const row of rows) {
    if (row.sha256 === null || row.size_bytes === null) continue;
    if (!row.inputs.some((input) => input.from === row.from_key && matcherOf(input.files)(row.path))) continue;
    const files = result.get(row.run_id) ?? [];
    files.push({
      artifactId: row.artifact_id,
      task: row.from_key,
      node: row.node_id,
      path: row.path,
      sizeBytes: Number(row.size_bytes),
      sha256: row.sha256,
      state: row.state,
      reason: row.reason,
    });
    result.set(row.run_id, files);
  }
  return result;
}
