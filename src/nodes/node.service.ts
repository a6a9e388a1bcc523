/** Registering, reading and administering nodes. Framework-free: throws AppErrors only. */
import { createHash, randomBytes } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { UniqueConstraintViolationException } from "@mikro-orm/core";
import { KNOWN_LAUNCHERS, NODE_ID_PATTERN } from "../messaging/contracts.js";
import {
  BadInputError,
  ChangeSet,
  checkSubject,
  checkText,
  ConflictError,
  ForbiddenError,
  isAdmin,
  MAX_NAME_CHARS,
  NotFoundError,
  operatesNode,
  validateResources,
  type ResourcesInputData,
  type Viewer,
} from "../kernel/index.js";
import { nodeIdsOfProjects } from "../projects/index.js";
import { json, query } from "../db/sql.js";
import { loseRunsOfNode } from "../runs/index.js";
import { Connectivity, Node, NodeAdminState } from "./node.entity.js";
import { nodeRowToSnapshot } from "./heartbeat.js";

export interface RegisterNodeData {
  id: string;
  name?: string | null;
  labels?: Record<string, unknown> | null;
  capacity?: number | null;
  launchers?: string[] | null;
  allowedTools?: string[] | null;
  resources?: ResourcesInputData | null;
}

/**
 * What this domain needs of the broker: each node's own user, provisioned with the node's
 * credential, its permissions withdrawn while DISABLED (see messaging/broker-users.ts).
 */
export interface NodeBrokerAccess {
  provision(nodeId: string, password: string, active: boolean): Promise<void>;
  revoke(nodeId: string): Promise<void>;
  restore(nodeId: string): Promise<void>;
  /** Deletes the node's user (when the node is removed). */
  remove(nodeId: string): Promise<void>;
}

export interface NodeFilter {
  adminState?: NodeAdminState | null;
  connectivity?: Connectivity | null;
  /** Every label given must match. */
  labels?: Record<string, unknown> | null;
  /** Also list removed nodes. @default false */
  includeRemoved?: boolean | null;
}

const TOOL_REF = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(@[A-Za-z0-9][A-Za-z0-9._+-]{0,49})?$/;

/** Most labels on a node (and in a selector or filter). */
export const MAX_LABELS = 64;
/** Most entries in a node's allowedTools. */
export const MAX_ALLOWED_TOOLS = 100;

export function validateLabels(field: string, labels: Record<string, unknown> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = Object.entries(labels ?? {});
  if (entries.length > MAX_LABELS) throw BadInputError.field(field, `at most ${MAX_LABELS} labels`);
  for (const [key, value] of entries) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/.test(key)) throw BadInputError.field(`${field}.${key.slice(0, 63)}`, "label keys are 1-63 letters, digits, '.', '_', '/', '-'");
    if (typeof value !== "string" || value.length > 256) throw BadInputError.field(`${field}.${key}`, "label values are strings of at most 256 characters");
    out[key] = value;
  }
  return out;
}

export function validateNodeId(field: string, id: string): void {
  if (!NODE_ID_PATTERN.test(id)) {
    throw BadInputError.field(field, `${JSON.stringify(id)} is not a node id (2-63 lowercase letters, digits and '-', starting with a letter or digit)`);
  }
}

/** Generates a node credential; only its sha256 is stored. */
function newCredential(): { credential: string; hash: string } {
  const credential = `fem_node_${randomBytes(24).toString("base64url")}`;
  return { credential, hash: createHash("sha256").update(credential).digest("hex") };
}

/**
 * Registers a node and provisions its broker user with a fresh credential, returned only here. The
 * row commits only once the broker user exists, so a broker that refuses leaves nothing behind.
 */
export async function registerNode(em: EntityManager, data: RegisterNodeData, broker: NodeBrokerAccess): Promise<{ node: Node; credential: string }> {
  validateNodeId("id", data.id);
  const capacity = data.capacity ?? 2;
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1_000) throw BadInputError.field("capacity", "must be an integer from 1 to 1000");
  const launchers = data.launchers ?? ["process"];
  if (launchers.length === 0) throw BadInputError.field("launchers", "name at least one launcher");
  for (const l of launchers) {
    if (!(KNOWN_LAUNCHERS as readonly string[]).includes(l)) throw BadInputError.field("launchers", `unknown launcher ${JSON.stringify(l)}; known: ${KNOWN_LAUNCHERS.join(", ")}`);
  }
  if ((data.allowedTools ?? []).length > MAX_ALLOWED_TOOLS) throw BadInputError.field("allowedTools", `at most ${MAX_ALLOWED_TOOLS} entries`);
  for (const t of data.allowedTools ?? []) {
    if (!TOOL_REF.test(t)) throw BadInputError.field("allowedTools", `${JSON.stringify(t)} is not a tool name or name@version`);
  }
  if (data.name != null) checkText("name", data.name, MAX_NAME_CHARS);
  const node = new Node();
  node.id = data.id;
  node.name = data.name ?? null;
  node.labels = validateLabels("labels", data.labels);
  node.capacity = capacity;
  node.launchers = [...new Set(launchers)];
  node.allowedTools = [...new Set(data.allowedTools ?? [])];
  node.registeredResources = validateResources("resources", data.resources);
  const { credential, hash } = newCredential();
  node.credentialHash = hash;
  let registered = node;
  try {
    registered = await em.transactional(async (tem) => {
      const [previous] = await query<{ removed_at: Date | null }>(tem, `select removed_at from node where id = ? for update`, [node.id]);
      if (previous && !previous.removed_at) throw new ConflictError(`node ${JSON.stringify(data.id)} is already registered`, { id: data.id });
      if (previous) await reviveRemovedNode(tem, node);
      else {
        tem.persist(node);
        await tem.flush();
      }
      await broker.provision(node.id, credential, true);
      return previous ? tem.findOneOrFail(Node, { id: node.id }, { refresh: true }) : node;
    });
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) throw new ConflictError(`node ${JSON.stringify(data.id)} is already registered`, { id: data.id });
    throw err;
  }
  return { node: registered, credential };
}

/**
 * A removed node registered again takes its old row back, reset as a new registration would set it,
 * so its past runs and accounting stay under the same id.
 */
async function reviveRemovedNode(em: EntityManager, node: Node): Promise<void> {
  await query(
    em,
    `update node set name = ?, labels = ?, capacity = ?, registered_resources = ?, launchers = ?, reported_launchers = '[]', datasets = '[]',
       allowed_tools = ?, admin_state = ?, connectivity = ?, last_heartbeat_at = null, health = null, credential_hash = ?, removed_at = null, updated_at = now()
     where id = ?`,
    [node.name, json(node.labels), node.capacity, json(node.registeredResources), json(node.launchers), json(node.allowedTools), NodeAdminState.ACTIVE, Connectivity.OFFLINE, node.credentialHash, node.id],
  );
}

/**
 * Gives a node a new credential (ADMIN or the node's operator): the broker user's password is
 * replaced and its open connections closed, so the old credential stops working at once.
 */
export async function rotateNodeCredential(em: EntityManager, viewer: Viewer, id: string, broker: NodeBrokerAccess): Promise<{ node: Node; credential: string }> {
  validateNodeId("id", id);
  await registeredNode(em, id, viewer, "rotate its credential");
  if (!operatesNode(viewer, id)) throw ForbiddenError.action(`rotate the credential of node ${id}`, "ADMIN or NODE_OPERATOR of the node");
  const { credential, hash } = newCredential();
  await em.transactional(async (tem) => {
    const rows = await query<{ admin_state: NodeAdminState }>(tem, `update node set credential_hash = ?, updated_at = now() where id = ? returning admin_state`, [hash, id]);
    if (rows.length === 0) throw NotFoundError.entity("Node", id);
    await broker.provision(id, credential, rows[0].admin_state !== NodeAdminState.DISABLED);
  });
  return { node: await getNode(em.fork(), id, viewer), credential };
}

export async function getNode(em: EntityManager, id: string, viewer: Viewer): Promise<Node> {
  const node = await em.findOne(Node, { id });
  if (!node || !(await canSeeNode(em, viewer, id))) throw NotFoundError.entity("Node", id);
  return node;
}

/** Ids of the nodes the viewer may see: those of its projects and those it operates; null means all (ADMIN). */
export async function visibleNodeIds(em: EntityManager, viewer: Viewer): Promise<Set<string> | null> {
  if (isAdmin(viewer)) return null;
  const ofProjects = await nodeIdsOfProjects(em, [...viewer.projects.keys()]);
  return new Set([...viewer.operatedNodes, ...ofProjects.map((p) => p.nodeId)]);
}

/** A node the viewer may see and that is not removed: CONFLICT when it was removed, as nothing may change it then. */
async function registeredNode(em: EntityManager, id: string, viewer: Viewer, action: string): Promise<Node> {
  const node = await getNode(em, id, viewer);
  if (node.removedAt) throw new ConflictError(`node ${id} was removed: register it again (registerNode) before you ${action}`, { node: id });
  return node;
}

async function canSeeNode(em: EntityManager, viewer: Viewer, id: string): Promise<boolean> {
  const visible = await visibleNodeIds(em, viewer);
  return visible === null || visible.has(id);
}

export async function listNodes(em: EntityManager, viewer: Viewer, filter: NodeFilter, first: number, afterId: string | null): Promise<{ nodes: Node[]; hasNextPage: boolean }> {
  const where: Record<string, unknown> = {};
  const visible = await visibleNodeIds(em, viewer);
  if (filter.adminState) where.adminState = filter.adminState;
  if (filter.connectivity) where.connectivity = filter.connectivity;
  if (!filter.includeRemoved) where.removedAt = null;
  if (afterId) where.id = { $gt: afterId };
  if (visible) where.$and = [{ id: { $in: [...visible] } }];
  if (filter.labels && Object.keys(filter.labels).length > 0) where.labels = validateLabels("filter.labels", filter.labels);
  const nodes = await em.find(Node, where, { orderBy: { id: "asc" }, limit: first + 1 });
  return { nodes: nodes.slice(0, first), hasNextPage: nodes.length > first };
}

/**
 * Sets a node's admin state. DRAINING: the scheduler starts nothing new there; what runs finishes.
 * DISABLED: runs handed to the node and not finished fail with NODE_LOST (retried per policy) and the
 * agent is told to stop them; runs still waiting stay queued until the node is ACTIVE again. The
 * node's broker user loses its permissions and connections while DISABLED and gets them back after.
 */
export async function setNodeAdminState(
  em: EntityManager,
  viewer: Viewer,
  id: string,
  state: NodeAdminState,
  broker: NodeBrokerAccess,
): Promise<{ node: Node; changes: ChangeSet }> {
  validateNodeId("id", id);
  await registeredNode(em, id, viewer, "change its admin state");
  if (!operatesNode(viewer, id)) throw ForbiddenError.action(`change the admin state of node ${id}`, "ADMIN or NODE_OPERATOR of the node");
  const changes = new ChangeSet();
  await em.transactional(async (tem) => {
    const rows = await query(tem, `update node set admin_state = ?, updated_at = now() where id = ? returning *`, [state, id]);
    if (rows.length === 0) throw NotFoundError.entity("Node", id);
    changes.nodes.set(id, nodeRowToSnapshot(rows[0]));
    if (state === NodeAdminState.DISABLED) {
      await loseRunsOfNode(tem, id, `node ${id} was disabled by an administrator`, changes);
      // Last, so that a broker that refuses rolls the whole change back.
      await broker.revoke(id);
    } else {
      await broker.restore(id);
    }
    changes.schedule = true;
  });
  return { node: await getNode(em.fork(), id, viewer), changes };
}

/** Makes `subject` an operator of the node (ADMIN). CONFLICT when it already is one. */
export async function grantNodeOperator(em: EntityManager, viewer: Viewer, nodeId: string, subject: string): Promise<Node> {
  if (!isAdmin(viewer)) throw ForbiddenError.action("grant node operators", "ADMIN");
  validateNodeId("nodeId", nodeId);
  checkSubject("subject", subject);
  const node = await registeredNode(em, nodeId, viewer, "grant it operators");
  const rows = await query(em, `insert into node_operator (node_id, subject, granted_at) values (?, ?, now()) on conflict do nothing returning subject`, [nodeId, subject]);
  if (rows.length === 0) throw new ConflictError(`${JSON.stringify(subject)} already operates node ${nodeId}`, { subject });
  return node;
}

export async function revokeNodeOperator(em: EntityManager, viewer: Viewer, nodeId: string, subject: string): Promise<Node> {
  if (!isAdmin(viewer)) throw ForbiddenError.action("revoke node operators", "ADMIN");
  validateNodeId("nodeId", nodeId);
  const node = await getNode(em, nodeId, viewer);
  const rows = await query(em, `delete from node_operator where node_id = ? and subject = ? returning subject`, [nodeId, subject]);
  if (rows.length === 0) throw NotFoundError.entity("NodeOperator", subject);
  return node;
}
