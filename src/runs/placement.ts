/**
 * What a node has and what its runs hold, in SQL: the one definition the scheduler, the submit
 * check and the API share. A node's totals are what it registered, kind by kind, else what its
 * agent last reported (cpus, memory, GPUs, free disk); a kind known neither way is not limited.
 * A run holds its task's requests from its dispatch until it ends.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import { json, query } from "../db/sql.js";
import { RESOURCE_KINDS, type ResourceAmountsData, type ResourceKind } from "../kernel/index.js";

const MIB = 1_048_576;

/** SQL of node `n`'s total of each kind (numeric, null when unknown). */
const TOTAL_SQL: Record<ResourceKind, (n: string) => string> = {
  cpus: (n) => `coalesce((${n}.registered_resources->>'cpus')::numeric, (${n}.health->>'cpus')::numeric)`,
  memoryMiB: (n) => `coalesce((${n}.registered_resources->>'memoryMiB')::numeric, floor((${n}.health->>'memoryTotalBytes')::numeric / ${MIB}))`,
  gpus: (n) => `coalesce((${n}.registered_resources->>'gpus')::numeric, (${n}.health->>'gpus')::numeric)`,
  diskMiB: (n) => `coalesce((${n}.registered_resources->>'diskMiB')::numeric, floor((${n}.health->>'diskFreeBytes')::numeric / ${MIB}))`,
};

/** SQL of the node total of `kind` for the node aliased `n`. */
export function nodeTotalSql(kind: ResourceKind, n: string): string {
  return TOTAL_SQL[kind](n);
}

/** SQL of task `t`'s request of `kind` (0 when not requested). */
export function requestSql(kind: ResourceKind, t: string): string {
  return `coalesce((${t}.resources->>'${kind}')::numeric, 0)`;
}

/**
 * A CTE body: per node, how many runs it holds (handed to it and not finished) and the sum of their
 * requests of each kind, as columns `runs`, `cpus`, `memoryMiB`, `gpus`, `diskMiB`.
 */
export function heldByNodeSql(extraWhere = ""): string {
  const sums = RESOURCE_KINDS.map((k) => `sum(${requestSql(k, "t")}) as "${k}"`).join(", ");
  return `select r.node_id, count(*)::int as runs, ${sums}
    from run r join task t on t.id = r.task_id
    where r.dispatched_at is not null and r.state in ('QUEUED', 'ACCEPTED', 'RUNNING') ${extraWhere}
    group by r.node_id`;
}

export interface NodeResources {
  nodeId: string;
  /** Runs handed to the node and not finished (QUEUED once dispatched, ACCEPTED, RUNNING). */
  activeRuns: number;
  /** What the node has in total; a missing kind is not known (and not limited). */
  totals: ResourceAmountsData;
  /** Requests of the runs it holds now; every kind present. */
  inUse: ResourceAmountsData;
  /** Totals minus what is in use (negative when totals shrank below it); missing where the total is. */
  free: ResourceAmountsData;
}

/** Totals, use and free amounts of each node in `nodeIds`, in one statement. */
export async function nodeResources(em: EntityManager, nodeIds: readonly string[]): Promise<NodeResources[]> {
  if (nodeIds.length === 0) return [];
  const ids = `(select value from jsonb_array_elements_text(?::jsonb))`;
  const columns = RESOURCE_KINDS.flatMap((k) => [`${nodeTotalSql(k, "n")} as "total_${k}"`, `coalesce(h."${k}", 0) as "used_${k}"`]).join(", ");
  const rows = await query<Record<string, string | null>>(
    em,
    `with held as (${heldByNodeSql(`and r.node_id in ${ids}`)})
     select n.id, coalesce(h.runs, 0) as active_runs, ${columns} from node n left join held h on h.node_id = n.id where n.id in ${ids}`,
    [json(nodeIds), json(nodeIds)],
  );
  return rows.map((row) => {
    const result: NodeResources = { nodeId: row.id!, activeRuns: Number(row.active_runs), totals: {}, inUse: {}, free: {} };
    for (const kind of RESOURCE_KINDS) {
      const used = Number(row[`used_${kind}`]);
      result.inUse[kind] = used;
      const total = row[`total_${kind}`];
      if (total === null) continue;
      result.totals[kind] = Number(total);
      result.free[kind] = Math.round((Number(total) - used) * 1000) / 1000;
    }
    return result;
  });
}
