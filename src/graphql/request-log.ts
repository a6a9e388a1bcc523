/**
 * One log line per GraphQL operation over HTTP, carrying the request id that the response's
 * `x-request-id` header and the audit log also carry: mutations at info, queries at debug.
 * Variables are never logged (they may hold credentials); error codes are.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import type { Logger } from "../logger.js";

export function createRequestLogPlugin<C extends { requestId: string }>(logger: Logger): ApolloServerPlugin<C> {
  return {
    async requestDidStart({ contextValue }) {
      const startedAt = performance.now();
      const log = logger.child({ requestId: contextValue.requestId });
      return {
        async willSendResponse({ operation, operationName, errors }) {
          const kind = operation?.operation ?? "unknown";
          const fields = {
            operation: kind,
            operationName: operationName ?? null,
            durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
            errorCodes: errors && errors.length > 0 ? [...new Set(errors.map((e) => String(e.extensions?.code ?? "INTERNAL")))] : undefined,
          };
          if (kind === "query") log.debug("graphql operation", fields);
          else log.info("graphql operation", fields);
        },
      };
    },
  };
}
