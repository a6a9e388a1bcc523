/** GraphQL clients for tests: HTTP POST and graphql-ws subscriptions that collect what arrives. */
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { waitUntil } from "./wait.js";

export interface GqlError {
  message: string;
  extensions?: Record<string, unknown> & { code?: string };
}

export interface GqlResult<T = Record<string, any>> {
  data?: T | null;
  errors?: GqlError[];
}

/**
 * The ADMIN API token every test orchestrator is started with (FEM_BOOTSTRAP_ADMIN_TOKEN); the
 * clients below send it unless a suite passes another token (or null, to call anonymously).
 */
export const TEST_ADMIN_TOKEN = "fem_pat_test-admin-0123456789abcdefghijklmnopqrstuv";
/** The subject the bootstrap admin token acts as. */
export const TEST_ADMIN_SUBJECT = "bootstrap-admin";

export interface CallOptions {
  /** Bearer token; null sends none. @default TEST_ADMIN_TOKEN */
  token?: string | null;
}

export async function gql<T = Record<string, any>>(url: string, query: string, variables: Record<string, unknown> = {}, options: CallOptions = {}): Promise<GqlResult<T>> {
  const token = options.token === undefined ? TEST_ADMIN_TOKEN : options.token;
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(30_000),
  });
  return (await response.json()) as GqlResult<T>;
}

/** Like gql, but throws when the answer has errors. */
export async function gqlOk<T = Record<string, any>>(url: string, query: string, variables: Record<string, unknown> = {}, options: CallOptions = {}): Promise<T> {
  const result = await gql<T>(url, query, variables, options);
  if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data;
}

export interface Collector<T> {
  items: T[];
  errors: unknown[];
  completed: boolean;
  waitFor(predicate: (items: T[]) => boolean, timeoutMs: number, what: string): Promise<void>;
  dispose(): Promise<void>;
}

export function wsClient(url: string, options: CallOptions = {}): Client {
  const token = options.token === undefined ? TEST_ADMIN_TOKEN : options.token;
  return createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams: token ? { authorization: `Bearer ${token}` } : {} });
}

/** Adds nodes to the suite's project (`test`), so the project's workflows may run on them. */
export async function addToTestProject(url: string, nodeIds: string[]): Promise<void> {
  for (const nodeId of nodeIds) await gqlOk(url, `mutation($n: ID!) { addProjectNode(project: "test", nodeId: $n) { id } }`, { n: nodeId });
}

/** Creates the suite's project `test` with the test admin as its OWNER (idempotent per database). */
export async function createTestProject(url: string): Promise<void> {
  const existing = await gql(url, `{ project(id: "test") { id } }`);
  if (existing.data?.project) return;
  await gqlOk(url, `mutation { createProject(input: { name: "test" }) { id } }`);
  await gqlOk(url, `mutation($s: String!) { addProjectMember(project: "test", subject: $s, role: OWNER) { subject } }`, { s: TEST_ADMIN_SUBJECT });
}

/** Subscribes and collects `data[field]` of every result. */
export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown>, field: string): Collector<T> {
  const collector: Collector<T> = {
    items: [],
    errors: [],
    completed: false,
    waitFor: (predicate, timeoutMs, what) =>
      waitUntil(
        () => {
          if (collector.errors.length > 0) throw new Error(`subscription failed: ${JSON.stringify(collector.errors)}`);
          return predicate(collector.items);
        },
        timeoutMs,
        what,
        20,
      ).then(() => undefined),
    dispose: async () => unsubscribe(),
  };
  const unsubscribe = client.subscribe<Record<string, T>>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) collector.errors.push(...result.errors);
        else if (result.data) collector.items.push(result.data[field]);
      },
      error: (err) => collector.errors.push(err),
      complete: () => (collector.completed = true),
    },
  );
  return collector;
}
