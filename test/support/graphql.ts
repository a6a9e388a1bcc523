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

export async function gql<T = Record<string, any>>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResult<T>> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(30_000),
  });
  return (await response.json()) as GqlResult<T>;
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
