/**
 * Removing a node for good (ADMIN): refused while it is ACTIVE or holds runs that have not finished;
 * otherwise its broker user and queues are deleted and the row is kept, marked removed, so its runs
 * and accounting stay readable. Registering the same id again revives the row (see registerNode).
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import { dispatchRoutingKey, EXCHANGES } from "../messaging/contracts.js";
import { AppError, ChangeSet, ConflictError, ForbiddenError, isAdmin, NotFoundError, UnavailableError, type Viewer } from "../kernel/index.js";
import { toError } from "../shared/index.js";
import { json, query } from "../db/sql.js";
import { removeNodeFromProjects } from "../projects/index.js";
import { unfinishedRunsOfNode } from "../runs/index.js";
import { Node, NodeAdminState } from "./node.entity.js";
import { nodeRowToSnapshot } from "./heartbeat.js";

/** What removal needs of the broker; each call is bounded and idempotent (a missing user or queue is fine). */
export interface NodeRemovalBroker {
  /** Deletes the node's broker user; RabbitMQ closes its connections with it. */
  remove(nodeId: string): Promise<void>;
  /** Deletes the node's queues one by one (never a whole vhost), each within a bounded wait. */
  removeQueues(nodeId: string): Promise<void>;
}

/**
 * Marks the node removed, takes it out of its projects and operators, drops its unsent dispatches
 * and cancels (they have no queue to go to any more), then deletes its broker user and queues, last,
 * so a broker that refuses rolls the whole change back and the call can be repeated.
 * CONFLICT while the node is ACTIVE or has runs not finished; NOT_FOUND when unknown or removed.
 */
export async function removeNode(em: EntityManager, viewer: Viewer, id: string, broker: NodeRemovalBroker): Promise<{ node: Node; changes: ChangeSet }> {
  if (!isAdmin(viewer)) throw ForbiddenError.action(`remove node ${id}`, "ADMIN");
  const changes = new ChangeSet();
  await em.transactional(async (tem) => {
    // FOR UPDATE waits for transactions inserting runs on the node (their foreign key check holds a share lock).
    const [row] = await query<{ admin_state: NodeAdminState; removed_at: Date | null }>(tem, `select admin_state, removed_at from node where id = ? for update`, [id]);
    if (!row || row.removed_at) throw NotFoundError.entity("Node", id);
    if (row.admin_state === NodeAdminState.ACTIVE) {
      throw new ConflictError(`node ${id} is ACTIVE: set it DISABLED (setNodeAdminState) so it takes no new work, wait until its runs have ended, then remove it`, {
        node: id,
        adminState: row.admin_state,
      });
    }
    const unfinished = await unfinishedRunsOfNode(tem, id);
    const total = Object.values(unfinished).reduce((a, b) => a + (b ?? 0), 0);
    if (total > 0) {
      const list = Object.entries(unfinished).map(([state, n]) => `${n} ${state}`).join(", ");
      throw new ConflictError(
        `node ${id} has ${total} run${total === 1 ? "" : "s"} not finished (${list}): wait for them to end or cancel them (runs still waiting on a ${row.admin_state} node stay queued), then remove it`,
        { node: id, unfinishedRuns: unfinished },
      );
    }
    const [updated] = await query(tem, `update node set removed_at = now(), connectivity = 'OFFLINE', updated_at = now() where id = ? returning *`, [id]);
    changes.nodes.set(id, nodeRowToSnapshot(updated));
    await query(tem, `delete from node_operator where node_id = ?`, [id]);
    await removeNodeFromProjects(tem, id);
    const keys = [dispatchRoutingKey(id, "run"), dispatchRoutingKey(id, "control")];
    await query(
      tem,
      `update outbox set sent_at = now(), last_error = 'node removed' where sent_at is null and exchange = ? and routing_key in (select value from jsonb_array_elements_text(?::jsonb))`,
      [EXCHANGES.dispatch, json(keys)],
    );
    await broker.remove(id);
    await broker.removeQueues(id).catch((err: unknown) => {
      if (err instanceof AppError) throw err;
      throw new UnavailableError(`RabbitMQ did not delete the queues of node ${id} (${toError(err).message}): the node is not removed; try again`, err);
    });
  });
  return { node: await em.fork().findOneOrFail(Node, { id }), changes };
}
