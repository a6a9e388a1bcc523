/**
 * The orchestrator as the CLI sees it: GraphQL over HTTP for queries and mutations, graphql-ws for
 * subscriptions, both signed in with the caller's bearer token. Nothing of the server is imported.
 */
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { CliError, EXIT_FAILED, EXIT_USAGE, toError } from "./errors.js";
import type { Settings } from "./config.js";

export interface Api {
  url: string;
  /** Runs one query or mutation; throws a CliError carrying the server's code and message. */
  request<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** A graphql-ws connection on the same URL (ws:// or wss://), opened at the first subscribe; the caller disposes it. */
  live(): Live;
  /**
   * `GET` (or `HEAD`) of a path relative to the API's origin with the bearer token, for downloads:
   * resolves with a 2xx or 416 answer, whose body the caller reads or cancels; throws a CliError
   * with the server's code and message otherwise. `signal` aborts it (e.g. a stalled download).
   */
  file(path: string, init: { method?: "GET" | "HEAD"; headers?: Record<string, string>; signal: AbortSignal }): Promise<Response>;
}

export interface Live {
  /** Subscribes; `next` gets each result's data, `error` a CliError once. Returns the unsubscribe. */
  subscribe<T>(query: string, variables: Record<string, unknown>, next: (data: T) => void, error: (err: CliError) => void): () => void;
  dispose(): Promise<void>;
}

interface GraphQLAnswer<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** @default 60_000 // a minute for one HTTP request */
const REQUEST_TIMEOUT_MS = 60_000;

export function createApi(settings: Settings): Api {
  const authorization = settings.token ? `Bearer ${settings.token}` : null;
  const refused = (code: string | null, message: string): CliError =>
    code === "UNAUTHENTICATED" ? new CliError(`${message} (${tokenHint(settings)})`, code) : new CliError(message, code);
  const unreachable = (err: unknown, url: string): CliError => {
    const cause = toError(err);
    const inner = cause.cause as NodeJS.ErrnoException | undefined;
    const reason = inner?.code ?? inner?.message ?? cause.message;
    return new CliError(`no answer from ${url}: ${reason}`, null, EXIT_USAGE, { cause });
  };
  return {
    url: settings.url,
    async request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
      let response: Response;
      try {
        response = await fetch(settings.url, {
          method: "POST",
          // The server refuses other content types as possible cross-site request forgery.
          headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
          body: JSON.stringify({ query, variables }),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } catch (err) {
        throw unreachable(err, settings.url);
      }
      const text = await response.text();
      let answer: GraphQLAnswer<T>;
      try {
        answer = JSON.parse(text) as GraphQLAnswer<T>;
      } catch (err) {
        throw new CliError(`${settings.url} answered HTTP ${response.status} without GraphQL: ${text.slice(0, 200)}`, null, EXIT_USAGE, { cause: err });
      }
      const first = answer.errors?.[0];
      if (first) throw refused(first.extensions?.code ?? null, first.message);
      if (!answer.data) throw new CliError(`${settings.url} answered HTTP ${response.status} without data`);
      return answer.data;
    },
    async file(path, init) {
      const url = new URL(path, settings.url).toString();
      let response: Response;
      try {
        response = await fetch(url, { method: init.method ?? "GET", headers: { ...init.headers, ...(authorization ? { authorization } : {}) }, signal: init.signal });
      } catch (err) {
        if (init.signal.aborted) throw new CliError(`${url}: no answer in time`, null, EXIT_FAILED, { cause: err });
        throw unreachable(err, url);
      }
      if (response.ok || response.status === 416) return response;
      const text = init.method === "HEAD" ? "" : await response.text().catch(() => "");
      let first: { message?: string; extensions?: { code?: string } } | undefined;
      try {
        first = (JSON.parse(text) as GraphQLAnswer<unknown>).errors?.[0];
      } catch {
        first = undefined;
      }
      const code = first?.extensions?.code ?? (response.status === 401 ? "UNAUTHENTICATED" : response.status === 404 ? "NOT_FOUND" : null);
      throw refused(code, first?.message ?? `${url} answered HTTP ${response.status}`);
    },
    live(): Live {
      const client: Client = createClient({
        url: settings.url.replace(/^http/, "ws"),
        webSocketImpl: WebSocket,
        lazy: true,
        // Brief outages are ridden out; the client resubscribes with the original variables.
        retryAttempts: 5,
        // A refused token is final: retrying it only repeats the refusal.
        shouldRetry: (event) => !isAuthClose(event),
        connectionParams: authorization ? { authorization } : {},
      });
      return {
        subscribe<T>(query: string, variables: Record<string, unknown>, next: (data: T) => void, error: (err: CliError) => void) {
          return client.subscribe<T>(
            { query, variables },
            {
              next: (result) => (result.errors?.length ? error(socketError(result.errors, settings)) : result.data && next(result.data as T)),
              error: (err) => error(socketError(err, settings)),
              complete: () => undefined,
            },
          );
        },
        dispose: async () => client.dispose(),
      };
    },
  };
}

/** Says which token the server refused, or that there was none. */
function tokenHint(settings: Pick<Settings, "token" | "tokenSource">): string {
  return settings.token ? `the token from ${settings.tokenSource} was refused; run fem login again` : "no token: run fem login, or set FEM_TOKEN";
}

function isAuthClose(event: unknown): boolean {
  const code = (event as { code?: unknown } | null)?.code;
  return code === 4401 || code === 4403;
}

/** The error a graphql-ws sink gets (an Error, GraphQL errors, or a close event) as a CliError. */
function socketError(err: unknown, settings: Pick<Settings, "token" | "tokenSource">): CliError {
  if (Array.isArray(err)) {
    const first = err[0] as { message?: string; extensions?: { code?: string } } | undefined;
    return new CliError(first?.message ?? "subscription failed", first?.extensions?.code ?? null);
  }
  if (err instanceof Error) return new CliError(err.message, null, 1, { cause: err });
  const close = (err ?? {}) as { code?: number; reason?: string };
  const how = `(${close.code ?? "?"}${close.reason ? ` ${close.reason}` : ""})`;
  if (isAuthClose(close)) return new CliError(`the server closed the WebSocket ${how} (${tokenHint(settings)})`, "UNAUTHENTICATED");
  return new CliError(`the WebSocket closed ${how}`);
}
