/**
 * One connection to the API per signed-in tab: queries over HTTP with the token in
 * `Authorization`, subscriptions over one graphql-ws socket with the token in `connectionParams`.
 * The socket reconnects by itself; a refused credential (4401/4403) signs the tab out.
 */
import { Client, fetchExchange, mapExchange, subscriptionExchange, type CombinedError } from "@urql/core";
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";
import { bearer, GRAPHQL_PATH, webSocketUrl } from "./session";

/** graphql-ws closes with these when the credential does not hold; retrying cannot help. */
const CREDENTIAL_CLOSE_CODES = new Set([4401, 4403]);
/** Longest wait between reconnects. @default 10_000 // 10 seconds */
const MAX_RETRY_WAIT_MS = 10_000;

export type ConnectionState = "connecting" | "connected" | "reconnecting";

export interface ApiClient {
  urql: Client;
  ws: WsClient;
  /** Called with the socket's state as it changes; returns the unsubscribe. */
  onConnection(listener: (state: ConnectionState) => void): () => void;
  /** GET a path of the API's origin with the token (downloads); rejects with the server's message on an error status. */
  fetchAuthorized(path: string): Promise<Response>;
  dispose(): void;
}

export interface ApiClientOptions {
  token: string;
  /** The server refused the token: the reason it gave. */
  onUnauthenticated(message: string): void;
}

function isCloseEvent(value: unknown): value is CloseEvent {
  return typeof value === "object" && value !== null && "code" in value && "reason" in value;
}

export function createApiClient({ token, onUnauthenticated }: ApiClientOptions): ApiClient {
  const listeners = new Set<(state: ConnectionState) => void>();
  const emit = (state: ConnectionState): void => listeners.forEach((l) => l(state));
  const ws = createWsClient({
    url: webSocketUrl(window.location),
    connectionParams: { authorization: bearer(token) },
    lazy: true,
    retryAttempts: Number.POSITIVE_INFINITY,
    retryWait: async (retries) => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(MAX_RETRY_WAIT_MS, 250 * 2 ** retries) * (0.5 + Math.random() / 2)));
    },
    shouldRetry: (event) => !(isCloseEvent(event) && CREDENTIAL_CLOSE_CODES.has(event.code)),
    on: {
      connecting: () => emit("connecting"),
      connected: () => emit("connected"),
      closed: (event) => {
        if (!isCloseEvent(event)) return emit("reconnecting");
        if (CREDENTIAL_CLOSE_CODES.has(event.code)) onUnauthenticated(event.reason || "the server refused the token");
        // 1000 is our own dispose (signing out, leaving); every other close is followed by a retry.
        else if (event.code !== 1000) emit("reconnecting");
      },
    },
  });
  const urql = new Client({
    url: GRAPHQL_PATH,
    // Nothing is cached: pages hold what they show and keep it current through subscriptions.
    requestPolicy: "network-only",
    preferGetMethod: false,
    fetchOptions: () => ({ headers: { authorization: bearer(token) } }),
    exchanges: [
      mapExchange({
        onError: (error) => {
          if (isUnauthenticated(error)) onUnauthenticated(errorMessage(error));
        },
      }),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? "" }, sink) }),
        }),
      }),
    ],
  });
  return {
    urql,
    ws,
    onConnection(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async fetchAuthorized(path) {
      const response = await fetch(path, { headers: { authorization: bearer(token) } });
      if (!response.ok) throw new Error((await response.text()).trim() || `${response.status} ${response.statusText}`);
      return response;
    },
    dispose() {
      listeners.clear();
      void ws.dispose();
    },
  };
}

/** The message to show for a failed operation: the server's own where it sent one. */
export function errorMessage(error: CombinedError | Error | undefined): string {
  if (!error) return "";
  if ("graphQLErrors" in error && error.graphQLErrors.length > 0) return error.graphQLErrors.map((e) => e.message).join("; ");
  if ("networkError" in error && error.networkError) return error.networkError.message;
  return error.message;
}

/** Whether the server says the caller must sign in again. */
export function isUnauthenticated(error: CombinedError | undefined): boolean {
  return Boolean(error?.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED") || error?.response?.status === 401);
}
