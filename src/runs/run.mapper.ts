/** Maps raw `run` rows (snake_case, from RETURNING *) to the Run shape GraphQL resolves. */
import type { Row } from "../db/sql.js";
import type { Run } from "./run.entity.js";

/**
 * A run as read by raw SQL: every column of the Run entity, camelCased. Also the type of the roots
 * of Run's field resolvers, so that type-graphql hands a plain record over as it is instead of
 * building an entity from it.
 */
export type RunRecord = Omit<Run, never>;

function camel(column: string): string {
  return column.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function rowToRun(row: Row): RunRecord {
  const run: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) run[camel(column)] = value;
  return run as unknown as RunRecord;
}
