/**
 * GraphQL over HTTP (Apollo Server) and over WebSocket (graphql-ws) on one port and one path.
 * We own the HTTP server so both transports share it and shutdown happens in our order.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer, HeaderMap } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { randomUUID } from "node:crypto";
import { getOperationAST, GraphQLError, type ExecutionArgs, type GraphQLSchema } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import { UnauthenticatedError } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { createAdmission, type AdmissionOptions } from "./admission.js";
import { authorizeOperation, toHttpError } from "./authorization.js";
import { createAuditPlugin, createWsAuditor } from "./audit-plugin.js";
import { createContext, type AppServices, type Context, type Identity } from "./context.js";
import { createErrorFormatter } from "./errors.js";

export const GRAPHQL_PATH = "/graphql";

export interface GraphQLServerOptions {
  host: string;
  port: number;
  maxRequestBytes: number;
  /** Cost limits and the mutation rate, the same on both transports. */
  limits: AdmissionOptions;
}

export interface GraphQLServer {
  /** http://host:port/graphql */
  url: string;
  wsUrl: string;
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

/** The `Authorization` value a graphql-ws connection sent in `connection_init`, checked again for every operation. */
const socketAuthorizations = new WeakMap<object, string | null>();

function connectionAuthorization(params: Record<string, unknown> | undefined): string | null {
  const value = params?.authorization ?? params?.Authorization;
  return typeof value === "string" ? value : null;
}

export async function startGraphQLServer(schema: GraphQLSchema, services: AppServices, options: GraphQLServerOptions, logger: Logger): Promise<GraphQLServer> {
  const httpServer = http.createServer();
  const wsServer = new WebSocketServer({ server: httpServer, path: GRAPHQL_PATH, maxPayload: options.maxRequestBytes });
  const formatError = createErrorFormatter(logger);
  const auditWsResult = createWsAuditor(services.recordMutation, logger);
  const admission = createAdmission(schema, options.limits);
  const wsCleanup = useServer<Record<string, unknown>>(
    {
      schema,
      // The token travels in connection_init; a connection without a valid one is closed (4403).
      onConnect: async (ctx) => {
        if (services.auth === "off") return true;
        const authorization = connectionAuthorization(ctx.connectionParams);
        try {
          const identity = await services.authenticator.authenticate(authorization);
          if (!identity) return false;
          socketAuthorizations.set(ctx.extra, authorization);
          return true;
        } catch (err) {
          if (!(err instanceof UnauthenticatedError)) logger.warn("WebSocket authentication failed", { error: err instanceof Error ? err.message : String(err) });
          return false;
        }
      },
      // Parsed, validated, held to the limits and authorised here, as on HTTP: a refused operation never starts.
      onSubscribe: async (ctx, _id, payload) => {
        // The token again, as HTTP does per request: one revoked or expired since connection_init starts nothing more.
        let identity: Identity | null = null;
        if (services.auth !== "off") {
          try {
            identity = await services.authenticator.authenticate(socketAuthorizations.get(ctx.extra));
          } catch (err) {
            if (err instanceof UnauthenticatedError) return [toHttpError(err)];
            throw err;
          }
        }
        const contextValue = await createContext(services, false, identity, ctx.extra.request.socket.remoteAddress ?? null);
        const admitted = admission.admit(payload, contextValue.caller, () => contextValue);
        if (Array.isArray(admitted)) return admitted;
        const args = admitted as ExecutionArgs;
        const operation = getOperationAST(args.document, payload.operationName ?? undefined);
        if (!operation) return [new GraphQLError("the document names no operation to run (or several without operationName)")];
        const denied = authorizeOperation(args.document, operation, contextValue.viewerOrNull);
        return denied ? [toHttpError(denied)] : args;
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(e.toJSON(), e)),
      onNext: async (_ctx, _id, _payload, args, result) => {
        const formatted = "errors" in result && result.errors ? { ...result, errors: result.errors.map((e) => formatError(e instanceof GraphQLError ? e.toJSON() : e, e)) } : undefined;
        await auditWsResult(args, formatted ?? result);
        return formatted as never;
      },
    },
    wsServer,
  );
  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    parseOptions: admission.parseOptions,
    validationRules: admission.validationRules,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      {
        async requestDidStart() {
          return {
            async didResolveOperation({ document, operation, contextValue }) {
              if (!operation) return;
              const denied = authorizeOperation(document, operation, contextValue.viewerOrNull);
              if (denied) throw toHttpError(denied);
            },
          };
        },
      },
      // Limits after the rules: an anonymous caller learns it must sign in before anything else.
      admission.apolloPlugin,
      createAuditPlugin<Context>(services.recordMutation, logger),
      { async serverWillStart() { return { async drainServer() { await wsCleanup.dispose(); } }; } },
    ],
  });
  await apollo.start();

  httpServer.on("request", (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/health") return sendJson(res, 200, { status: "ok" });
    if (url.pathname !== GRAPHQL_PATH) return sendJson(res, 404, { error: `GraphQL is served at ${GRAPHQL_PATH}` });
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
          if (!(err instanceof UnauthenticatedError)) throw err;
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
      for (const [key, value] of response.headers) res.setHeader(key, value);
      res.statusCode = response.status ?? 200;
      if (response.body.kind === "complete") {
        res.end(response.body.string);
      } else {
        for await (const chunk of response.body.asyncIterator) res.write(chunk);
        res.end();
      }
    })().catch((err: unknown) => {
      const status = (err as { status?: number }).status ?? (err instanceof SyntaxError ? 400 : 500);
      if (status === 500) logger.error("HTTP request failed", { error: err instanceof Error ? err.message : String(err) });
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
    async stop() {
      if (stopped) return;
      stopped = true;
      // Apollo's drain plugins close HTTP connections and the graphql-ws server.
      await apollo.stop();
    },
  };
}
