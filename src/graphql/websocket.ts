/**
 * GraphQL over WebSocket (graphql-ws) on the HTTP server's `/graphql`: the Origin is checked at the
 * upgrade, the token in `connection_init`, and each subscribe is checked again (credential, limits,
 * rules) before it runs.
 */
import type http from "node:http";
import { randomUUID } from "node:crypto";
import {
  getOperationAST,
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  validate,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from "graphql";
import { useServer, type Extra as WsExtra } from "graphql-ws/use/ws";
import { WebSocketServer, type WebSocket } from "ws";
import { AppError, ForbiddenError, UnauthenticatedError } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import type { Admission } from "./admission.js";
import { authorizeOperation, toHttpError } from "./authorization.js";
import { recordAuthEvent, type createWsAuditor } from "./audit-plugin.js";
import { createContext, type AppServices, type Context, type Identity } from "./context.js";
import type { OriginPolicy } from "./origins.js";
import { createSharedPayloads } from "./shared-payloads.js";
import { createLiveDelivery, type DeliveryTarget } from "./live-delivery.js";
import { createSharedSubscribe, shareKey } from "./shared-subscriptions.js";
import { armExpiry, CLOSE_UNAUTHORIZED, credentialRefusal, TOKEN_EXPIRED } from "./socket-credentials.js";
import { CLOSE_TOO_MANY_SOCKETS, createSocketCounter, subscriptionLimitError, tooManySocketsReason } from "./socket-limits.js";

export interface WebSocketOptions {
  path: string;
  /** Largest message. */
  maxPayloadBytes: number;
  /** Whether `__schema` and `__type` may be queried. */
  introspection: boolean;
  origins: OriginPolicy;
  /** @default 100 */
  maxSubscriptionsPerSocket: number;
  /** @default 20 */
  maxSocketsPerUser: number;
}

export interface WebSocketDeps {
  schema: GraphQLSchema;
  services: AppServices;
  admission: Admission;
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError;
  auditResult: ReturnType<typeof createWsAuditor>;
  /** Records a refused query or subscription in the audit log (mutations are recorded with their outcome). */
  auditDenial(denied: UnauthenticatedError | ForbiddenError, operation: OperationDefinitionNode, context: Context): void;
  logger: Logger;
}

export interface GraphQLWebSocket {
  /** WebSockets open on this server now. */
  connectionCount(): number;
  /** Subscriptions served by another one's live source (not counted among the pubsub's subscribers). */
  sharedSubscriptionCount(): number;
  /** Closes every socket (1001) and the server; safe to call twice. */
  dispose(): Promise<void>;
}

/** What graphql-ws's ws adapter hands every hook. */
type Extra = WsExtra;

function connectionAuthorization(params: Record<string, unknown> | undefined): string | null {
  const value = params?.authorization ?? params?.Authorization;
  return typeof value === "string" ? value : null;
}

function asGraphQLError(error: AppError): GraphQLError {
  return new GraphQLError(error.message, { originalError: error });
}

export function attachGraphQLWebSocket(httpServer: http.Server, options: WebSocketOptions, deps: WebSocketDeps): GraphQLWebSocket {
  const { services, admission, logger } = deps;
  const wsServer = new WebSocketServer({
    server: httpServer,
    path: options.path,
    maxPayload: options.maxPayloadBytes,
    // Before the upgrade: a page from a foreign origin never gets a socket (403).
    verifyClient: (info, accept) => {
      if (options.origins.allowsUpgrade(info.req.headers.origin, info.req.headers.host)) return accept(true);
      logger.warn("WebSocket upgrade refused: origin not allowed", { origin: info.req.headers.origin, remoteAddress: info.req.socket.remoteAddress });
      accept(false, 403, "origin not allowed");
    },
  });
  const sockets = createSocketCounter(options.maxSocketsPerUser);
  /** The identity each socket authenticated with in `connection_init` (null when auth is off). */
  const identities = new WeakMap<Extra, Identity | null>();
  /** The socket and operation id of each admitted subscription's execution arguments. */
  const targets = new WeakMap<ExecutionArgs, DeliveryTarget>();
  const formatResult = (result: ExecutionResult): ExecutionResult =>
    result.errors ? { ...result, errors: result.errors.map((e) => deps.formatError(e.toJSON(), e) as GraphQLError) } : result;
  const delivery = createLiveDelivery({ bufferSize: services.subscriberBufferSize, format: formatResult });
  const payloads = createSharedPayloads();
  wsServer.on("connection", (socket) => payloads.attach(socket));

  /** The identity in `connection_init`, or false (recorded in the audit log as a failed sign-in). */
  const authenticate = async (extra: Extra, params: Record<string, unknown> | undefined): Promise<Identity | false> => {
    const refuse = (reason: string): false => {
      recordAuthEvent(services.recordMutation, logger, { actor: "anonymous", action: "auth.signIn", outcome: "UNAUTHENTICATED", requestId: randomUUID(), details: { transport: "websocket", reason } });
      return false;
    };
    try {
      return (await services.authenticator.authenticate(connectionAuthorization(params))) ?? refuse("no token in connection_init");
    } catch (err) {
      if (!(err instanceof UnauthenticatedError)) logger.warn("WebSocket authentication failed", { error: err instanceof Error ? err.message : String(err), remoteAddress: extra.request.socket.remoteAddress });
      return refuse(err instanceof Error ? err.message : String(err));
    }
  };

  /** Counts the socket against its subject's limit and arms its expiry; false when it must not be acknowledged. */
  const admitSocket = (socket: WebSocket, identity: Identity): boolean => {
    // The client may have gone while we authenticated: its close event has fired already.
    if (socket.readyState !== socket.OPEN) return false;
    const release = sockets.acquire(identity.subject);
    if (!release) {
      socket.close(CLOSE_TOO_MANY_SOCKETS, tooManySocketsReason(options.maxSocketsPerUser));
      return false;
    }
    const expiry = identity.expiresAt ? armExpiry(identity.expiresAt, () => socket.close(CLOSE_UNAUTHORIZED, TOKEN_EXPIRED)) : null;
    socket.once("close", () => {
      release();
      expiry?.clear();
    });
    return true;
  };

  const wsCleanup = useServer<Record<string, unknown>>(
    {
      schema: deps.schema,
      // One execution per event for all the subscribers of one document as one viewer.
      // Live subscriptions of one key are executed and serialised once per event and written to
      // every socket off the publishing path (live-delivery.ts); mutations' results are not among
      // them, so nothing they skip (onNext's audit) applies.
      subscribe: createSharedSubscribe((args) => shareKey(args, (args.contextValue as Context).viewerOrNull), { delivery, targetOf: (args) => targets.get(args) ?? null }),
      // The token travels in connection_init; a connection without a valid one is closed (4403).
      onConnect: async (ctx) => {
        if (services.auth === "off") {
          identities.set(ctx.extra, null);
          return true;
        }
        const identity = await authenticate(ctx.extra, ctx.connectionParams);
        // graphql-ws closes with 4403 on false; a close admitSocket made first wins.
        if (!identity || !admitSocket(ctx.extra.socket, identity)) return false;
        identities.set(ctx.extra, identity);
        return true;
      },
      // Parsed, validated, held to the limits and authorised here, as on HTTP: a refused operation never starts.
      onSubscribe: async (ctx, id, payload) => {
        // graphql-ws lists this operation among ctx.subscriptions before calling us.
        const overLimit = subscriptionLimitError(Object.keys(ctx.subscriptions).length, options.maxSubscriptionsPerSocket);
        if (overLimit) return [asGraphQLError(overLimit)];
        const identity = identities.get(ctx.extra) ?? null;
        if (identity) {
          const refusal = await credentialRefusal(services.authenticator, identity);
          if (refusal) {
            ctx.extra.socket.close(CLOSE_UNAUTHORIZED, refusal);
            return [asGraphQLError(UnauthenticatedError.because(`the socket's ${refusal}: connect again with a valid token`))];
          }
        }
        const contextValue = await createContext(services, false, identity, ctx.extra.request.socket.remoteAddress ?? null);
        const admitted = admission.admit(payload, contextValue.caller, () => contextValue);
        if (Array.isArray(admitted)) return admitted;
        const args = admitted as ExecutionArgs;
        if (!options.introspection) {
          const refused = validate(deps.schema, args.document, [NoSchemaIntrospectionCustomRule]);
          if (refused.length > 0) return refused;
        }
        const operation = getOperationAST(args.document, payload.operationName ?? undefined);
        if (!operation) return [new GraphQLError("the document names no operation to run (or several without operationName)")];
        const denied = authorizeOperation(args.document, operation, contextValue.viewerOrNull);
        logger.debug("graphql operation over WebSocket", { requestId: contextValue.requestId, operation: operation.operation, operationName: operation.name?.value ?? null, denied: denied !== null });
        if (denied) deps.auditDenial(denied, operation, contextValue);
        if (denied) return [toHttpError(denied)];
        targets.set(args, { socket: ctx.extra.socket, id });
        return args;
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => deps.formatError(e.toJSON(), e)),
      onNext: async (_ctx, _id, _payload, args, result) => {
        const formatted = "errors" in result && result.errors ? { ...result, errors: result.errors.map((e) => deps.formatError(e instanceof GraphQLError ? e.toJSON() : e, e)) } : undefined;
        await deps.auditResult(args, formatted ?? result);
        // The result itself, not a copy: one shared by several subscriptions is serialised once (shared-payloads.ts).
        return (formatted ?? result) as never;
      },
      jsonMessageReplacer: payloads.replacer,
    },
    wsServer,
  );
  let disposed: Promise<void> | null = null;
  return {
    connectionCount: () => wsServer.clients.size,
    sharedSubscriptionCount: () => delivery.sharedCount(),
    dispose(): Promise<void> {
      disposed ??= Promise.resolve(wsCleanup.dispose());
      return disposed;
    },
  };
}
