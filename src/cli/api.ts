/**
 * The orchestrator as the CLI sees it: GraphQL over HTTP for queries and mutations, graphql-ws for
 * subscriptions, both signed in with the caller's bearer token. Nothing of the server is imported.
 */
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { CliError, EXIT_USAGE, toError } from "./errors.js";
import type { Settings } from "./settings.js";

export interface Api {
  url: string;
  /** Runs one query or mutation; throws a CliError carrying the server's code and message. */
  request<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** A graphql-ws connection on the same URL (ws:// or wss://), opened at the first subscribe; the caller disposes it. */
  live(): Live;
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
        const cause = toError(err);
        const inner = cause.cause as NodeJS.ErrnoException | undefined;
        const reason = inner?.code ?? inner?.message ?? cause.message;
        throw new CliError(`no answer from ${settings.url}: ${reason}`, null, EXIT_USAGE, { cause });
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
