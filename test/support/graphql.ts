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

export async function gql<T = Record<string, any>>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResult<T>> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
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
export async function gqlOk<T = Record<string, any>>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const result = await gql<T>(url, query, variables);
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

export function wsClient(url: string): Client {
  return createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
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
export function wsClientFrom(url: string, localAddress: string): Client {
  class FromAddress extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { localAddress });
    }
  }
  return createClient({ url, webSocketImpl: FromAddress, retryAttempts: 0, lazy: true });
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

/** An HTTP POST from `localAddress`, with the status and headers (the rate limit answers 429 with Retry-After). */
export function gqlFrom(url: string, localAddress: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResult & { status: number; retryAfter: string | null }> {
  const body = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: "POST", localAddress, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }, timeout: 30_000 }, (response) => {
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
