/**
 * What every operation passes before it runs, whichever transport brought it: the token limit
 * while parsing, graphql-js validation with the depth and alias rules, then the cost (which needs
 * the variables) and, for mutations, the caller's rate. Apollo runs the first two itself (its
 * `parseOptions` and `validationRules`) and the rest in a plugin; graphql-ws runs all of them in
 * `onSubscribe`.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import { getOperationAST, GraphQLError, specifiedRules, validate, type DocumentNode, type GraphQLSchema, type ValidationRule } from "graphql";
import type { ExecutionArgs } from "graphql";
import type { Context } from "./context.js";
import { costError, limitRules, parseLimited, type QueryLimits } from "./limits.js";
import { createTokenBuckets, mutationRateError, type Caller, type RateLimiter } from "./rate-limit.js";

export interface AdmissionOptions extends QueryLimits {
  /** @default 600 */
  mutationsPerMinute: number;
}

export interface Admission {
  parseOptions: { maxTokens: number };
  validationRules: ValidationRule[];
  /** Cost and rate: the first refusal, or null. Throws GraphQLError when the variables do not fit the operation. */
  check(document: DocumentNode, operationName: string | null | undefined, variables: Record<string, unknown> | null | undefined, caller: Caller): GraphQLError | null;
  /** For Apollo: refuses in `didResolveOperation`, before execution. */
  apolloPlugin: ApolloServerPlugin<Context>;
  /** For graphql-ws: the execution arguments, or the errors that refuse the message. */
  admit(
    payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
    caller: Caller,
    contextValue: (caller: Caller) => Context,
  ): ExecutionArgs | readonly GraphQLError[];
}

export function createAdmission(schema: GraphQLSchema, options: AdmissionOptions, limiter: RateLimiter = createTokenBuckets(options.mutationsPerMinute)): Admission {
  const validationRules = limitRules(options);
  const check: Admission["check"] = (document, operationName, variables, caller) =>
    costError(schema, document, variables, operationName, options.maxCost) ?? mutationRateError(limiter, caller, getOperationAST(document, operationName));

  return {
    parseOptions: { maxTokens: options.maxTokens },
    validationRules,
    check,
    apolloPlugin: {
      async requestDidStart() {
        return {
          async didResolveOperation(request) {
            const refused = check(request.document, request.operationName, request.request.variables, request.contextValue.caller);
            if (refused) throw refused;
          },
        };
      },
    },
    admit(payload, caller, contextValue) {
      try {
        const document = parseLimited(payload.query, options.maxTokens);
        const errors = validate(schema, document, [...specifiedRules, ...validationRules]);
        if (errors.length > 0) return errors;
        const refused = check(document, payload.operationName, payload.variables, caller);
        if (refused) return [refused];
        return { schema, document, operationName: payload.operationName, variableValues: payload.variables, contextValue: contextValue(caller) };
      } catch (err) {
        if (err instanceof GraphQLError) return [err];
        throw err;
      }
    },
  };
}
