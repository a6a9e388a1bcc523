/**
 * GraphQL over HTTP (Apollo Server) and over WebSocket (graphql-ws) on one port and one path.
 * We own the HTTP server so both transports share it and shutdown happens in our order.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer, HeaderMap } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginCacheControlDisabled } from "@apollo/server/plugin/disabled";
import { randomUUID } from "node:crypto";
import type { GraphQLSchema, OperationDefinitionNode } from "graphql";
import { ForbiddenError, UnauthenticatedError, UnavailableError } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { createAdmission, type AdmissionOptions } from "./admission.js";
import { authorizeOperation, toHttpError } from "./authorization.js";
import { applyCors, createOriginPolicy } from "./origins.js";
import { attachGraphQLWebSocket } from "./websocket.js";
import { createAuditPlugin, createWsAuditor, recordAuthEvent } from "./audit-plugin.js";
import { createContext, type AppServices, type Context, type Identity } from "./context.js";
import { createErrorFormatter } from "./errors.js";
import { createRequestLogPlugin } from "./request-log.js";
import { createDashboard, type DashboardSignIn } from "./dashboard.js";


export const GRAPHQL_PATH = "/graphql";

export interface GraphQLServerOptions {
  host: string;
  port: number;
  maxRequestBytes: number;
  /** Cost limits and the mutation rate, the same on both transports. */
  limits: AdmissionOptions;
  /** Whether `__schema` and `__type` may be queried (both transports). */
  introspection: boolean;
  /** Origins of browser pages allowed besides the server's own (WebSocket upgrade and CORS). */
  allowedOrigins: readonly string[];
  /** @default 100 */
  maxSubscriptionsPerSocket: number;
  /** @default 20 */
  maxSocketsPerUser: number;
  /** Other paths this listener answers (`/ready`, `/metrics`), by exact path. @default {} */
  routes?: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void>;
  /** The built dashboard to serve at `/`; null serves none. */
  dashboardDir: string | null;
  /** The identity provider the dashboard signs in through (told to the page at /config.json). @default null // API tokens only */
  dashboardSignIn?: DashboardSignIn | null;
  /** Plain HTTP routes besides GraphQL, by path prefix (downloads); the handler gets the rest of the path. @default [] */
  prefixRoutes?: readonly HttpRoute[];
}

export interface HttpRoute {
  prefix: string;
  handle(req: http.IncomingMessage, res: http.ServerResponse, rest: string): Promise<void>;
}

export interface GraphQLServer {
  /** http://host:port/graphql */
  url: string;
  wsUrl: string;
  /** GraphQL WebSockets open now. */
  webSocketConnections(): number;
  /** Subscriptions served by another one's live source (not counted among the pubsub's subscribers). */
  sharedSubscriptions(): number;
  stop(): Promise<void>;
}

function readBody(req: http.IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(Object.assign(new Error(`request body over ${maxBytes} bytes`), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

export async function startGraphQLServer(schema: GraphQLSchema, services: AppServices, options: GraphQLServerOptions, logger: Logger): Promise<GraphQLServer> {
  const httpServer = http.createServer();
  const formatError = createErrorFormatter(logger);
  // Mutations are recorded by the audit plugin with their outcome; refused queries and subscriptions here.
  const auditDenial = (denied: UnauthenticatedError | ForbiddenError, operation: OperationDefinitionNode, context: Context): void => {
    if (operation.operation === "mutation") return;
    recordAuthEvent(services.recordMutation, logger, {
      actor: context.viewerOrNull?.subject ?? "anonymous",
      action: "auth.denied",
      outcome: denied instanceof UnauthenticatedError ? "UNAUTHENTICATED" : "DENIED",
      requestId: context.requestId,
      details: { operation: operation.operation, reason: denied.message },
    });
  };
  const admission = createAdmission(schema, options.limits);
  const origins = createOriginPolicy(options.allowedOrigins);
  const dashboard = options.dashboardDir === null ? null : createDashboard(options.dashboardDir, options.dashboardSignIn ?? null);
  if (dashboard && !dashboard.built) logger.warn("dashboard not built: / answers 503 until `npm run build` has run", { dir: options.dashboardDir });
  const webSocket = attachGraphQLWebSocket(
    httpServer,
    {
      path: GRAPHQL_PATH,
      maxPayloadBytes: options.maxRequestBytes,
      introspection: options.introspection,
      origins,
      maxSubscriptionsPerSocket: options.maxSubscriptionsPerSocket,
      maxSocketsPerUser: options.maxSocketsPerUser,
    },
    { schema, services, admission, formatError, auditResult: createWsAuditor(services.recordMutation, logger), auditDenial, logger },
  );
  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    introspection: options.introspection,
    parseOptions: admission.parseOptions,
    validationRules: admission.validationRules,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      // Apollo's default cache-control plugin wraps every field's resolver (thousands per graph read)
      // to compute a policy that is always "uncacheable" here (no cache hints): its header is sent as is.
      ApolloServerPluginCacheControlDisabled(),
      { async requestDidStart() { return { async willSendResponse({ response }) { response.http.headers.set("cache-control", "no-store"); } }; } },
      {
        async requestDidStart() {
          return {
            async didResolveOperation({ document, operation, contextValue }) {
              if (!operation) return;
              const denied = authorizeOperation(document, operation, contextValue.viewerOrNull);
              if (!denied) return;
              auditDenial(denied, operation, contextValue);
              throw toHttpError(denied);
            },
          };
        },
      },
      // Limits after the rules: an anonymous caller learns it must sign in before anything else.
      admission.apolloPlugin,
      createAuditPlugin<Context>(services.recordMutation, logger),
      createRequestLogPlugin<Context>(logger),
      { async serverWillStart() { return { async drainServer() { await webSocket.dispose(); } }; } },
    ],
  });
  await apollo.start();

  httpServer.on("request", (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/health") return sendJson(res, 200, { status: "ok" });
    const route = options.routes && Object.hasOwn(options.routes, url.pathname) ? options.routes[url.pathname] : undefined;
    if (route) return route(req, res);
    const prefixed = options.prefixRoutes?.find((r) => url.pathname.startsWith(r.prefix));
    if (prefixed) {
      req.resume();
      return void prefixed.handle(req, res, url.pathname.slice(prefixed.prefix.length)).catch((err: unknown) => {
        logger.error("HTTP route failed", { path: prefixed.prefix, error: err instanceof Error ? err.message : String(err) });
        if (!res.headersSent) sendJson(res, 500, { errors: [{ message: "Internal server error", extensions: { code: "INTERNAL" } }] });
        else res.destroy();
      });
    }
    if (url.pathname !== GRAPHQL_PATH) {
      if (dashboard?.handle(req, res)) return;
      return sendJson(res, 404, { error: `GraphQL is served at ${GRAPHQL_PATH}` });
    }
    if (applyCors(req, res, origins)) return;
    void (async () => {
      const headers = new HeaderMap();
      for (const [key, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(", ") : value);
      }
      const requestId = randomUUID();
      res.setHeader("x-request-id", requestId);
      let identity: Identity | null = null;
      if (services.auth === "on") {
        try {
          identity = await services.authenticator.authenticate(headers.get("authorization"));
        } catch (err) {
          if (err instanceof UnavailableError) return sendJson(res, 503, { errors: [{ message: err.message, extensions: { code: err.code } }] }, { "retry-after": "5" });
          if (!(err instanceof UnauthenticatedError)) throw err;
          recordAuthEvent(services.recordMutation, logger, { actor: "anonymous", action: "auth.signIn", outcome: "UNAUTHENTICATED", requestId, details: { transport: "http", reason: err.message } });
          req.resume();
          return sendJson(res, 401, { errors: [{ message: err.message, extensions: { code: err.code } }] }, { "www-authenticate": 'Bearer realm="fem", error="invalid_token"' });
        }
      }
      let body: unknown = undefined;
      if (req.method === "POST") {
        const text = await readBody(req, options.maxRequestBytes);
        body = text.length > 0 && headers.get("content-type")?.includes("application/json") ? JSON.parse(text) : text;
      }
      const response = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? "GET", headers, search: url.search, body },
        context: () => createContext(services, true, identity, req.socket.remoteAddress ?? null, requestId),
      });
      for (const [key, value] of response.headers) res.setHeader(key, key === "vary" ? `${value}, Origin` : value);
      res.statusCode = response.status ?? 200;
      if (response.body.kind === "complete") {
        res.end(response.body.string);
      } else {
        for await (const chunk of response.body.asyncIterator) res.write(chunk);
        res.end();
      }
    })().catch((err: unknown) => {
      const status = (err as { status?: number }).status ?? (err instanceof SyntaxError ? 400 : 500);
      if (status === 500) logger.error("HTTP request failed", { requestId: res.getHeader("x-request-id"), error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) {
        sendJson(res, status, { errors: [{ message: status === 500 ? "Internal server error" : (err as Error).message, extensions: { code: status === 500 ? "INTERNAL" : "BAD_USER_INPUT" } }] });
      } else res.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(options.port, options.host, () => resolve());
  });
  const address = httpServer.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let stopped = false;
  return {
    url: `http://${host}:${address.port}${GRAPHQL_PATH}`,
    wsUrl: `ws://${host}:${address.port}${GRAPHQL_PATH}`,
    webSocketConnections: () => webSocket.connectionCount(),
    sharedSubscriptions: () => webSocket.sharedSubscriptionCount(),
    async stop() {
      if (stopped) return;
      stopped = true;
      // Apollo's drain plugins close HTTP connections and the graphql-ws server.
      await apollo.stop();
    },
  };
}
