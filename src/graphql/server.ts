/**
 * GraphQL over HTTP (Apollo Server) and over WebSocket (graphql-ws) on one port and one path.
 * We own the HTTP server so both transports share it and shutdown happens in our order.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer, HeaderMap } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { GraphQLError, type GraphQLSchema } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import type { Logger } from "../logger.js";
import { createAdmission, type AdmissionOptions } from "./admission.js";
import { createContext, type AppServices, type Context } from "./context.js";
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

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

export async function startGraphQLServer(schema: GraphQLSchema, services: AppServices, options: GraphQLServerOptions, logger: Logger): Promise<GraphQLServer> {
  const httpServer = http.createServer();
  const wsServer = new WebSocketServer({ server: httpServer, path: GRAPHQL_PATH, maxPayload: options.maxRequestBytes });
  const formatError = createErrorFormatter(logger);
  const admission = createAdmission(schema, options.limits);
  const wsCleanup = useServer<Record<string, unknown>>(
    {
      schema,
      // Parsed, validated and checked here so that the limits hold on this transport as on HTTP.
      onSubscribe: (ctx, _id, payload) =>
        admission.admit(payload, { subject: null, remoteAddress: ctx.extra.request.socket.remoteAddress ?? null }, (caller): Context => createContext(services, false, caller)),
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(e.toJSON(), e)),
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!("errors" in result) || !result.errors) return;
        return { ...result, errors: result.errors.map((e) => formatError(e instanceof GraphQLError ? e.toJSON() : e, e)) } as never;
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
      admission.apolloPlugin,
      ApolloServerPluginDrainHttpServer({ httpServer }),
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
      let body: unknown = undefined;
      if (req.method === "POST") {
        const text = await readBody(req, options.maxRequestBytes);
        body = text.length > 0 && headers.get("content-type")?.includes("application/json") ? JSON.parse(text) : text;
      }
      const response = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? "GET", headers, search: url.search, body },
        context: async () => createContext(services, true, { subject: null, remoteAddress: req.socket.remoteAddress ?? null }),
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
