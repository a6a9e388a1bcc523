/** Node connectivity: heartbeats mark a node ONLINE; a sweep marks silent nodes OFFLINE. */
import type { EntityManager } from "@mikro-orm/postgresql";
import type { HeartbeatEvent, LauncherIsolation } from "../messaging/contracts.js";
import { json, query, type Row } from "../db/sql.js";
import type { Logger } from "../logger.js";
import type { ChangeSet, NodeSnapshot } from "../kernel/index.js";
import type { Node } from "./node.entity.js";

/** Applies the newest heartbeat of each node in one statement. */
export async function recordHeartbeats(em: EntityManager, heartbeats: HeartbeatEvent[], changes: ChangeSet, logger: Logger): Promise<void> {
  if (heartbeats.length === 0) return;
  const newest = new Map<string, HeartbeatEvent>();
  for (const hb of heartbeats) {
    const seen = newest.get(hb.nodeId);
    if (!seen || seen.at < hb.at) newest.set(hb.nodeId, hb);
  }
  const rows = [...newest.values()].map((hb) => ({ id: hb.nodeId, at: hb.at, health: hb.health, launchers: reportedLaunchers(hb), datasets: hb.datasets ?? [] }));
  const updated = await query(
    em,
    `update node n set last_heartbeat_at = now(), health = x.health, reported_launchers = x.launchers, datasets = x.datasets,
       connectivity = 'ONLINE', updated_at = now()
     from jsonb_to_recordset(?::jsonb) as x(id text, at timestamptz, health jsonb, launchers jsonb, datasets jsonb)
     where n.id = x.id and n.removed_at is null returning n.*`,
    [json(rows)],
  );
  const known = new Set(updated.map((r) => r.id as string));
  for (const id of newest.keys()) if (!known.has(id)) logger.warn("heartbeat from an unregistered or removed node ignored", { nodeId: id });
  for (const row of updated) changes.nodes.set(row.id as string, nodeRowToSnapshot(row));
}

/** The heartbeat's launchers with their isolation; names only (isolation null) from agents that send no details. */
function reportedLaunchers(hb: HeartbeatEvent): { name: string; isolation: LauncherIsolation | null }[] {
  return hb.launcherDetails ?? hb.launchers.map((name) => ({ name, isolation: null }));
}

/**
 * Marks ONLINE nodes whose last heartbeat is older than `silenceMs` OFFLINE. Safe with several
 * orchestrators: the UPDATE decides, so each node is reported once.
 */
export async function sweepSilentNodes(em: EntityManager, silenceMs: number, changes: ChangeSet): Promise<string[]> {
  const rows = await query(
    em,
    `update node set connectivity = 'OFFLINE', updated_at = now()
     where connectivity = 'ONLINE' and (last_heartbeat_at is null or last_heartbeat_at < now() - (? * interval '1 millisecond'))
     returning *`,
    [silenceMs],
  );
  for (const row of rows) changes.nodes.set(row.id as string, nodeRowToSnapshot(row));
  return rows.map((r) => r.id as string);
}

export function nodeRowToSnapshot(row: Row): NodeSnapshot {
  return {
    id: row.id as string,
    name: row.name,
    labels: row.labels,
    capacity: row.capacity,
    launchers: row.launchers,
    registeredResources: row.registered_resources,
    reportedLaunchers: row.reported_launchers,
    datasets: row.datasets,
    allowedTools: row.allowed_tools,
    adminState: row.admin_state,
    connectivity: row.connectivity,
    lastHeartbeatAt: row.last_heartbeat_at,
    health: row.health,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The snapshot of a loaded node (without its credential hash). */
export function nodeSnapshot(node: Node): NodeSnapshot {
  const { credentialHash: _hidden, ...rest } = { ...node };
  return rest;
}
