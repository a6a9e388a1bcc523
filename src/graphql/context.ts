/** What every resolver gets: the ORM, batch loaders, live events and the services' collaborators. */
import { randomUUID } from "node:crypto";
import DataLoader from "dataloader";
import type { MikroORM } from "@mikro-orm/postgresql";
import { loadViewer, type Authenticator, type Identity } from "../auth/index.js";
import { GlobalRole, UnauthenticatedError, type AfterCommit, type Viewer } from "../kernel/index.js";
import type { PubSub } from "../live/pubsub.js";
import type { RecordMutation } from "./audit-plugin.js";
import { Node, type NodeBrokerAccess } from "../nodes/index.js";
import { membersOfProjects, nodeIdsOfProjects, type ProjectMember } from "../projects/index.js";
import { nodeResources, runsByTaskIds, type NodeResources, type Run } from "../runs/index.js";
import { artifactsByRunIds, type Artifact } from "../artifacts/index.js";
import { Tool } from "../tools/index.js";
import { tasksByIds, tasksByWorkflowIds, Workflow, type Task } from "../workflows/index.js";
import type { Caller } from "./rate-limit.js";

export interface AppServices {
  orm: MikroORM;
  pubsub: PubSub;
  /** The instance's one after-commit hook: every mutation calls it with what it committed. */
  afterCommit: AfterCommit;
  /** Registers a node's queues on the broker right away (best effort). */
  declareNodeQueues(nodeId: string): Promise<void>;
  /** Deletes a removed node's queues, one by one, each within a bounded wait. */
  removeNodeQueues(nodeId: string): Promise<void>;
  /** Each node's own broker user. */
  brokerUsers: NodeBrokerAccess;
  subscriberBufferSize: number;
  /** Turns an `Authorization` header into the caller. */
  authenticator: Authenticator;
  /** `off`: every caller is a local ADMIN (local development only). */
  auth: "on" | "off";
  /** Stores a mutation's outcome in the audit log (see `audit-plugin.ts`). */
  recordMutation: RecordMutation;
  /** Most runs one workflow may create. @default 20_000 */
  maxRunsPerWorkflow: number;
  /** SPKI PEM of the key that signs dispatches and cancels. */
  orchestratorPublicKeyPem: string;
}

/**
 * What the loaders below have loaded in this operation, read without a promise: a field resolver
 * over thousands of objects that returns a value rather than a promise spares GraphQL a promise per
 * object (the dominant cost of reading a large graph). Empty for subscriptions (no caching there).
 */
export interface Loaded {
  node: ReadonlyMap<string, Node | null>;
  task: ReadonlyMap<string, Task | null>;
}

export interface Loaders {
  loaded: Loaded;
  node: DataLoader<string, Node | null>;
  /** A node's resource totals, use and free amounts. */
  nodeResources: DataLoader<string, NodeResources | null>;
  tool: DataLoader<string, Tool | null>;
  workflow: DataLoader<string, Workflow | null>;
  task: DataLoader<string, Task | null>;
  tasksOfWorkflow: DataLoader<string, Task[]>;
  runsOfTask: DataLoader<string, Run[]>;
  artifactsOfRun: DataLoader<string, Artifact[]>;
  membersOfProject: DataLoader<string, ProjectMember[]>;
  nodeIdsOfProject: DataLoader<string, string[]>;
}

export interface Context extends AppServices {
  loaders: Loaders;
  /** The authenticated caller, or null when anonymous. */
  identity: Identity | null;
  /** The caller's rights; throws UNAUTHENTICATED when anonymous. */
  viewer(): Viewer;
  /** The signed-in caller's rights, or null when anonymous. */
  viewerOrNull: Viewer | null;
  /** Names this request in logs and the audit trail. */
  requestId: string;
  /** Who is asking, for the mutation rate limit: the subject when signed in, else the remote address. */
  caller: Caller;
}

export type { Identity };

/** Who every caller is when authentication is off. */
export const LOCAL_DEVELOPER: Identity = { subject: "local-developer", name: "local developer (FEM_AUTH=off)", email: null, roles: [GlobalRole.ADMIN], via: "api-token", expiresAt: null };

function byId<T extends { id: string }>(keys: readonly string[], rows: T[]): (T | null)[] {
  const map = new Map(rows.map((r) => [r.id, r]));
  return keys.map((k) => map.get(k) ?? null);
}

function grouped<T>(keys: readonly string[], rows: T[], keyOf: (row: T) => string): T[][] {
  const map = new Map<string, T[]>();
  for (const row of rows) {
    const list = map.get(keyOf(row)) ?? [];
    list.push(row);
    map.set(keyOf(row), list);
  }
  return keys.map((k) => map.get(k) ?? []);
}

/**
 * One loader set per GraphQL operation. Subscriptions pass `cache: false` so each event reads
 * fresh rows; every batch reads through its own EntityManager fork for the same reason.
 */
export function createLoaders(orm: MikroORM, cache: boolean): Loaders {
  const em = () => orm.em.fork();
  const loaded = { node: new Map<string, Node | null>(), task: new Map<string, Task | null>() };
  const remember = <V>(map: Map<string, V>, ids: readonly string[], values: V[]): V[] => {
    if (cache) ids.forEach((id, i) => map.set(id, values[i]!));
    return values;
  };
  const node = new DataLoader<string, Node | null>(async (ids) => remember(loaded.node, ids, byId(ids, await em().find(Node, { id: { $in: [...ids] } }))), { cache });
  const task = new DataLoader<string, Task | null>(async (ids) => remember(loaded.task, ids, byId(ids, await tasksByIds(em(), ids))), { cache });
  return {
    loaded,
    node,
    nodeResources: new DataLoader(
      async (ids) => {
        const rows = await nodeResources(em(), ids);
        return ids.map((id) => rows.find((r) => r.nodeId === id) ?? null);
      },
      { cache },
    ),
    tool: new DataLoader(async (ids) => byId(ids, await em().find(Tool, { id: { $in: [...ids] } })), { cache }),
    workflow: new DataLoader(async (ids) => byId(ids, await em().find(Workflow, { id: { $in: [...ids] } })), { cache }),
    task,
    // A workflow's tasks are what its tasks' `dependsOn` read: the graph is read once, not twice.
    tasksOfWorkflow: new DataLoader(
      async (ids) => {
        const tasks = await tasksByWorkflowIds(em(), ids);
        for (const t of tasks) task.prime(t.id, t);
        remember(loaded.task, tasks.map((t) => t.id), tasks);
        return grouped(ids, tasks, (t) => t.workflowId);
      },
      { cache },
    ),
    // Runs are shown with their nodes: those are loaded with them (a few rows), so `Run.node` resolves without a promise.
    runsOfTask: new DataLoader(
      async (ids) => {
        const runs = await runsByTaskIds(em(), ids);
        if (cache) await node.loadMany([...new Set(runs.map((r) => r.nodeId))]);
        return grouped(ids, runs, (r) => r.taskId);
      },
      { cache },
    ),
    artifactsOfRun: new DataLoader(async (ids) => grouped(ids, await artifactsByRunIds(em(), ids), (a) => a.runId), { cache }),
    membersOfProject: new DataLoader(async (ids) => grouped(ids, await membersOfProjects(em(), ids), (m) => m.projectId), { cache }),
    nodeIdsOfProject: new DataLoader(
      async (ids) => grouped(ids, await nodeIdsOfProjects(em(), ids), (p) => p.projectId).map((rows) => rows.map((r) => r.nodeId)),
      { cache },
    ),
  };
}

/**
 * The context of one operation for a caller already authenticated (`identity`, null when
 * anonymous): the caller's Viewer is loaded once here.
 */
export async function createContext(
  services: AppServices,
  cache: boolean,
  identity: Identity | null,
  remoteAddress: string | null,
  requestId: string = randomUUID(),
): Promise<Context> {
  const caller = services.auth === "off" ? LOCAL_DEVELOPER : identity;
  const viewerOrNull = caller ? await loadViewer(services.orm.em.fork(), caller) : null;
  return {
    ...services,
    loaders: createLoaders(services.orm, cache),
    identity: caller,
    viewerOrNull,
    requestId,
    caller: { subject: viewerOrNull?.subject ?? null, remoteAddress },
    viewer() {
      if (!viewerOrNull) throw UnauthenticatedError.because("sign in: send Authorization: Bearer <token>");
      return viewerOrNull;
    },
  };
}
