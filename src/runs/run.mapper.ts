/** Maps raw `run` rows (snake_case, from RETURNING *) to the Run shape GraphQL resolves. */
import type { Row } from "../db/sql.js";
import type { Run } from "./run.entity.js";

export type RunRecord = Omit<Run, never>;

const dateFields = ["createdAt", "queuedAt", "acceptedAt", "startedAt", "finishedAt"] as const;

function camel(column: string): string {
  return column.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function rowToRun(row: Row): RunRecord {
  const run: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) run[camel(column)] = value;
  return run as unknown as RunRecord;
}

/** Restores Date fields of a run that travelled as JSON. */
export function reviveRun(json: Record<string, unknown>): RunRecord {
  const run = { ...json };
  for (const field of dateFields) {
    const value = run[field];
    run[field] = typeof value === "string" ? new Date(value) : (value ?? null);
  }
  return run as unknown as RunRecord;
}
