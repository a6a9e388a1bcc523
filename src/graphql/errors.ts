/**
 * The one place errors become client-visible: AppErrors keep their message and code, GraphQL
 * syntax/validation errors become BAD_USER_INPUT, and anything else is masked as INTERNAL (logged).
 */
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { AppError } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { translateDbError } from "../db/sql.js";
import { tokenLimitReason } from "./limits.js";

const inputCodes = new Set(["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT", "BAD_REQUEST", "PERSISTED_QUERY_NOT_FOUND", "OPERATION_RESOLUTION_FAILURE"]);

function unwrap(error: unknown): unknown {
  let current = error;
  while (current instanceof GraphQLError && current.originalError) current = current.originalError;
  return current;
}

export function createErrorFormatter(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = translateDbError(unwrap(error));
    const base = { locations: formatted.locations, path: formatted.path };
    if (original instanceof AppError && original.isPublic) {
      return { ...base, message: original.message, extensions: { ...original.facts, code: original.code } };
    }
    const code = formatted.extensions?.code;
    // Apollo parses with the token limit itself; graphql-js reports it only as a syntax error.
    const tokens = code === "GRAPHQL_PARSE_FAILED" ? tokenLimitReason(formatted.message) : null;
    if (tokens) return { ...base, message: tokens.message, extensions: { ...tokens.facts, code: tokens.code } };
    if (typeof code === "string" && inputCodes.has(code)) {
      return { ...base, message: formatted.message, extensions: { code: "BAD_USER_INPUT", reason: code } };
    }
    if (original instanceof GraphQLError && !formatted.path) {
      // Errors graphql-js raises about the request itself (variable coercion and the like). With a
      // path it is an execution fault (e.g. null for a non-null field): masked and logged below.
      return { ...base, message: formatted.message, extensions: { code: "BAD_USER_INPUT" } };
    }
    logger.error("unexpected error in a GraphQL operation", {
      path: formatted.path?.join("."),
      error: original instanceof Error ? (original.stack ?? original.message) : String(original),
    });
    return { ...base, message: "Internal server error", extensions: { code: "INTERNAL" } };
  };
}
