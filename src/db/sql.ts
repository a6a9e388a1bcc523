/**
 * Raw SQL for the hot paths (ingestion, outbox, logs), run on an EntityManager so it joins the
 * EntityManager's transaction. Placeholders are `?`; pass arrays through `json(...)` and unpack
 * them in SQL (`jsonb_array_elements_text(?::jsonb)`, `jsonb_to_recordset(?::jsonb)`), because
 * the query builder would otherwise expand an array into a list of placeholders.
 */
import { DeadlockException, type EntityClass, type EntityDictionary } from "@mikro-orm/core";
import type { EntityManager, Knex } from "@mikro-orm/postgresql";
import { UnavailableError } from "../kernel/index.js";

export type Row = Record<string, unknown>;

export async function query<T = Row>(em: EntityManager, sql: string, params: unknown[] = []): Promise<T[]> {
  try {
    return (await em.execute(sql, params, "all")) as T[];
  } catch (err) {
    throw translateDbError(err);
  }
}

/**
 * Like `query`, but the parameters travel bound (`$1`, …) instead of inlined in the SQL text. For
 * large parameters (a JSON batch of log lines, runs or outbox rows): MikroORM escapes an inlined one
 * character by character and PostgreSQL parses it as one literal, which made a 4,000-line insert
 * about 4× slower and a 2,000-row outbox insert about 3× slower. Joins the EntityManager's transaction.
 * Placeholders are `?` as in `query`; the statement is not seen by the ORM's query logger.
 */
export async function queryBound<T = Row>(em: EntityManager, sql: string, params: unknown[] = []): Promise<T[]> {
  const knex: Knex = em.getTransactionContext<Knex.Transaction>() ?? em.getConnection().getKnex();
  try {
    const result = (await knex.raw(sql, params as Knex.RawBinding[])) as { rows: T[] };
    return result.rows;
  } catch (err) {
    throw translateDbError(err);
  }
}

/**
 * Rows of an entity's table (`select *`) as plain objects of the entity's shape, mapped as the
 * ORM maps them (property names, dates parsed) but without building entities (identity map,
 * property propagation), which costs more than the SQL when a read returns thousands of rows.
 */
export function entityData<T extends object>(em: EntityManager, entity: EntityClass<T>, rows: Row[]): T[] {
  const comparator = em.getComparator();
  return rows.map((row) => comparator.mapResult<T>(entity.name, row as EntityDictionary<T>) as T);
}

/** Encodes a value as a JSON string parameter. */
export function json(value: unknown): string {
  return JSON.stringify(value);
}

const transientCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"]);

/** Names of the SQLSTATE codes a node's data can cause. */
const dataErrorNames: Record<string, string> = {
  "22001": "string data right truncation",
  "22003": "numeric value out of range",
  "22007": "invalid datetime format",
  "22008": "datetime field overflow",
  "22021": "character not in repertoire",
  "22P02": "invalid text representation",
  "22P05": "untranslatable character",
  "23502": "not-null violation",
  "23514": "check violation",
};

/**
 * What PostgreSQL refused, from the error's SQLSTATE, constraint and column only: its message
 * carries the statement and the row, which may hold the very data that was refused.
 */
export function dbErrorSummary(err: unknown): string {
  const e = (err ?? {}) as { code?: unknown; constraint?: unknown; column?: unknown };
  const code = typeof e.code === "string" ? e.code : "unknown";
  const parts = [`PostgreSQL error ${code}${dataErrorNames[code] ? ` (${dataErrorNames[code]})` : ""}`];
  if (typeof e.constraint === "string") parts.push(`constraint ${e.constraint}`);
  if (typeof e.column === "string") parts.push(`column ${e.column}`);
  return parts.join(", ");
}

/** True when the error means PostgreSQL is away or restarting (the request may be retried). */
export function isTransientDbError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  if (code && transientCodes.has(code)) return true;
  const message = err instanceof Error ? err.message : String(err);
  return /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|Knex: Timeout acquiring a connection/i.test(message);
}

/** Turns driver errors that mean "database away" into UnavailableError; leaves others as they are. */
export function translateDbError(err: unknown): unknown {
  if (isTransientDbError(err)) return new UnavailableError("the database is unavailable; try again shortly", err);
  return err;
}

/** PostgreSQL's codes for a transaction it aborted so that another could go on (deadlock, serialization). */
const retryableCodes = new Set(["40P01", "40001"]);

/** Whether PostgreSQL aborted the transaction as a deadlock victim or a serialization failure (running it again may succeed). */
export function isRetryableDbError(err: unknown): boolean {
  const code = (err as { code?: string; sqlState?: string } | null)?.code ?? (err as { sqlState?: string } | null)?.sqlState;
  return err instanceof DeadlockException || (code !== undefined && retryableCodes.has(code));
}

/**
 * Runs `work` (one whole transaction) again when PostgreSQL aborted it as a deadlock victim or a
 * serialization failure, up to `attempts` times with a short random pause.
 */
export async function retryOnDeadlock<T>(work: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= attempts || !isRetryableDbError(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40 * attempt));
    }
  }
}
