/** What every resolver gets: the ORM, batch loaders, live events and the services' collaborators. */
import DataLoader from "dataloader";
import type { MikroORM } from "@mikro-orm/postgresql";
import type { AfterCommit } from "../kernel/index.js";
import type { PubSub } from "../live/pubsub.js";
import { Node } from "../nodes/index.js";
import { runsByTaskIds, type Run } from "../runs/index.js";
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
  subscriberBufferSize: number;
  /** Most runs one workflow may create. @default 20_000 */
  maxRunsPerWorkflow: number;
}

export interface Loaders {
  node: DataLoader<string, Node | null>;
  tool: DataLoader<string, Tool | null>;
  workflow: DataLoader<string, Workflow | null>;
  task: DataLoader<string, Task | null>;
  tasksOfWorkflow: DataLoader<string, Task[]>;
  runsOfTask: DataLoader<string, Run[]>;
}

export interface Context extends AppServices {
  loaders: Loaders;
  caller: Caller;
}

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
  return {
    node: new DataLoader(async (ids) => byId(ids, await em().find(Node, { id: { $in: [...ids] } })), { cache }),
    tool: new DataLoader(async (ids) => byId(ids, await em().find(Tool, { id: { $in: [...ids] } })), { cache }),
    workflow: new DataLoader(async (ids) => byId(ids, await em().find(Workflow, { id: { $in: [...ids] } })), { cache }),
    task: new DataLoader(async (ids) => byId(ids, await tasksByIds(em(), ids)), { cache }),
    tasksOfWorkflow: new DataLoader(async (ids) => grouped(ids, await tasksByWorkflowIds(em(), ids), (t) => t.workflowId), { cache }),
    runsOfTask: new DataLoader(async (ids) => grouped(ids, await runsByTaskIds(em(), ids), (r) => r.taskId), { cache }),
  };
}

export function createContext(services: AppServices, cache: boolean, caller: Caller): Context {
  return { ...services, loaders: createLoaders(services.orm, cache), caller };
}
