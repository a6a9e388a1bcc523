/**
 * Cost limits, applied to every operation before it runs, on HTTP and WebSocket alike: document
 * tokens (while parsing), field depth and aliases (validation rules), and an estimated cost
 * (computed with the request's variables, from the fields' `complexity`). Each refusal is
 * QUERY_TOO_COMPLEX naming the limit, its maximum and, where known, what the operation had.
 */
import { maxAliasesRule } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthRule } from "@escape.tech/graphql-armor-max-depth";
import {
  getNamedType,
  GraphQLError,
  isLeafType,
  parse,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationContext,
  type ValidationRule,
} from "graphql";
import { fieldExtensionsEstimator, getComplexity, type ComplexityEstimator } from "graphql-query-complexity";
import { QueryTooComplexError, type AppError } from "../kernel/index.js";

export interface QueryLimits {
  /** @default 12 */
  maxDepth: number;
  /** @default 30 */
  maxAliases: number;
  /** @default 25_000 */
  maxCost: number;
  /** @default 5_000 */
  maxTokens: number;
}

/** A GraphQL error carrying `reason` (so the error formatter shows its code), answered with HTTP `status`. */
export function requestError(reason: AppError, status = 400, headers?: Map<string, string>): GraphQLError {
  return new GraphQLError(reason.message, { originalError: reason, extensions: { http: { status, headers } } });
}

/** The number graphql-armor puts after "found" in its messages (its only way to report it). */
function foundIn(message: string): number | undefined {
  const match = /found (\d+)/.exec(message);
  return match ? Number(match[1]) : undefined;
}

/**
 * Depth and alias limits as graphql-js validation rules (graphql-armor's). Its rules throw out of
 * `validate()` by default, which Apollo would answer as INTERNAL; here they report instead.
 */
export function limitRules(limits: QueryLimits): ValidationRule[] {
  const report = (limit: string, max: number, describe: (actual: string) => string) => [
    (context: ValidationContext | null, error: GraphQLError) => {
      const actual = foundIn(error.message);
      const reason = new QueryTooComplexError(`${describe(actual === undefined ? `more than ${max}` : String(actual))} (at most ${max})`, { limit, max, actual });
      context?.reportError(requestError(reason));
    },
  ];
  return [
    maxDepthRule({ n: limits.maxDepth, propagateOnRejection: false, onReject: report("depth", limits.maxDepth, (n) => `the operation nests fields ${n} deep`) }),
    maxAliasesRule({ n: limits.maxAliases, propagateOnRejection: false, onReject: report("aliases", limits.maxAliases, (n) => `the operation has ${n} aliases`) }),
  ];
}

/** graphql-js's message when `parse(…, { maxTokens })` gives up (16.x spells it "more that"). */
const TOKEN_LIMIT = /^Syntax Error: Document contains more (?:than|that) (\d+) tokens/;

/** The QUERY_TOO_COMPLEX error for graphql-js's token-limit syntax error, or null for any other message. */
export function tokenLimitReason(message: string): QueryTooComplexError | null {
  const match = TOKEN_LIMIT.exec(message);
  if (!match) return null;
  const max = Number(match[1]);
  return new QueryTooComplexError(`the document has more than ${max} tokens; send a smaller one`, { limit: "tokens", max });
}

/** Parses with the token limit; throws GraphQLError (syntax, or QUERY_TOO_COMPLEX past the limit). */
export function parseLimited(source: string, maxTokens: number): DocumentNode {
  try {
    return parse(source, { maxTokens });
  } catch (err) {
    const reason = err instanceof GraphQLError ? tokenLimitReason(err.message) : null;
    if (reason) throw requestError(reason);
    throw err;
  }
}

/** Every object (or list of objects) a field returns costs 1 plus its selections; scalars cost 0. */
const objectEstimator: ComplexityEstimator = ({ field, childComplexity }) => (isLeafType(getNamedType(field.type)) ? 0 : 1 + childComplexity);

/** The estimated cost of the operation: fields' own `complexity` where given, else `objectEstimator`. */
export function operationCost(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | null | undefined, operationName: string | null | undefined): number {
  return getComplexity({
    schema,
    query: document,
    variables: variables ?? {},
    operationName: operationName ?? undefined,
    estimators: [fieldExtensionsEstimator(), objectEstimator],
  });
}

/** The QUERY_TOO_COMPLEX error when the operation costs more than `maxCost`, else null. */
export function costError(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | null | undefined, operationName: string | null | undefined, maxCost: number): GraphQLError | null {
  const cost = operationCost(schema, document, variables, operationName);
  if (cost <= maxCost) return null;
  return requestError(
    new QueryTooComplexError(`the operation's estimated cost is ${cost} (at most ${maxCost}); ask for smaller pages or fewer nested lists`, { limit: "cost", max: maxCost, actual: cost }),
  );
}
