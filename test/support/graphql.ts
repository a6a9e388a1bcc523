/** GraphQL clients for tests: HTTP POST and graphql-ws subscriptions that collect what arrives. */
import http from "node:http";
import { createClient, type Client } from "graphql-ws";
import * as assert from "uvu/assert";
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

/** Asserts the answer's first error has `code` and a message matching `pattern`; returns its extensions. */
export function expectError(result: GqlResult, code: string, pattern: RegExp): Record<string, unknown> {
  assert.ok(result.errors?.length, `expected an error, got ${JSON.stringify(result.data)}`);
  const error = result.errors![0];
  assert.is(error.extensions?.code, code, JSON.stringify(error));
  assert.match(error.message, pattern);
  return error.extensions!;
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

/** A graphql-ws client whose socket connects from `localAddress` (e.g. 127.0.0.2), to look like another caller. */
export function wsClientFrom(url: string, localAddress: string, token: string = TEST_ADMIN_TOKEN): Client {
  class FromAddress extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { localAddress });
    }
  }
  return createClient({ url, webSocketImpl: FromAddress, retryAttempts: 0, lazy: true, connectionParams: { authorization: `Bearer ${token}` } });
}

/** Sends one operation over graphql-ws and returns its first result, or its errors when the server refused it. */
export function wsOnce<T = Record<string, any>>(client: Client, query: string, variables: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<GqlResult<T>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for a WebSocket answer to ${query.slice(0, 60)}`));
    }, timeoutMs);
    const settle = (result: GqlResult<T>) => {
      clearTimeout(timer);
      dispose();
      resolve(result);
    };
    const dispose = client.subscribe<T>(
      { query, variables },
      {
        next: (result) => settle(result as GqlResult<T>),
        error: (err) => (Array.isArray(err) ? settle({ errors: err as GqlError[] }) : (clearTimeout(timer), reject(err))),
        complete: () => settle({}),
      },
    );
  });
}

/** An HTTP POST from `localAddress` with `token`, with the status and headers (the rate limit answers 429 with Retry-After). */
export function gqlFrom(
  url: string,
  localAddress: string,
  query: string,
  variables: Record<string, unknown> = {},
  token: string = TEST_ADMIN_TOKEN,
): Promise<GqlResult & { status: number; retryAfter: string | null }> {
  const body = JSON.stringify({ query, variables });
  const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization: `Bearer ${token}` };
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: "POST", localAddress, headers, timeout: 30_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const header = response.headers["retry-after"];
        resolve({ ...(JSON.parse(Buffer.concat(chunks).toString("utf8")) as GqlResult), status: response.statusCode ?? 0, retryAfter: typeof header === "string" ? header : null });
      });
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error("HTTP request timed out")));
    request.on("error", reject);
    request.end(body);
  });
}
