/** Appends to and reads the hash-chained audit log. */
import type { EntityManager, MikroORM } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import { AuditEvent, AuditOutcome } from "./audit-event.entity.js";
import { sanitiseDetails } from "./audit-details.js";
import { GENESIS_HASH, hashAuditFields } from "./audit-hash.js";

/** Actor of an event no caller caused (sweeps, start-up). */
export const SYSTEM_ACTOR = "system";
/** Actor of a caller who presented no identity. */
export const ANONYMOUS_ACTOR = "anonymous";

/** Transaction-scoped advisory lock key that serialises appends ("FEMA" in ASCII). */
const AUDIT_APPEND_LOCK = 0x46454d41;

export interface AuditEventInput {
  actor: string;
  action: string;
  target?: string | null;
  outcome: AuditOutcome;
  requestId: string;
  /** Small facts; members named like secrets are redacted, and over 4 KiB is replaced by its size. */
  details?: Record<string, unknown>;
}

export interface AuditEventFilter {
  actor?: string | null;
  action?: string | null;
  target?: string | null;
  outcome?: AuditOutcome | null;
  requestId?: string | null;
}

/**
 * Appends one event inside the transaction `em` is in (so it commits or rolls back with the
 * caller's rows), opening one when there is none. Appends are serialised with a transaction-scoped
 * advisory lock rather than `select … for update` of the last row: an empty table has no row to
 * lock, and a waiter released by a row lock would still chain onto the row it read before the
 * winner's insert, forking the chain. The lock is held until the caller commits, so call this last
 * in a transaction. Throws under REPEATABLE READ or SERIALIZABLE: their snapshot, taken before the
 * lock was granted, would miss the append committed while waiting and fork the chain too.
 */
export async function appendAuditEvent(em: EntityManager, event: AuditEventInput): Promise<AuditEvent> {
  if (!em.isInTransaction()) return em.transactional((tx) => appendAuditEvent(tx, event));
  const [lock] = await query<{ isolation: string }>(em, "select pg_advisory_xact_lock(?), current_setting('transaction_isolation') as isolation", [
    AUDIT_APPEND_LOCK,
  ]);
  if (lock.isolation !== "read committed") throw new Error(`appendAuditEvent needs a READ COMMITTED transaction, not ${lock.isolation}`);
  // The id comes from the sequence before the insert because the hash covers it.
  const [head] = await query<{ id: string; prev_hash: string | null }>(
    em,
    "select nextval('audit_event_id_seq')::text as id, (select hash from audit_event order by id desc limit 1) as prev_hash",
  );
  const fields = {
    id: head.id,
    // Millisecond precision, as JavaScript dates have, so the stored value hashes the same.
    at: new Date(),
    actor: event.actor,
    action: event.action,
    target: event.target ?? null,
    outcome: event.outcome,
    requestId: event.requestId,
    details: sanitiseDetails(event.details),
    prevHash: head.prev_hash ?? GENESIS_HASH,
  };
  const hash = hashAuditFields(fields);
  await query(
    em,
    `insert into audit_event (id, at, actor, action, target, outcome, request_id, details, prev_hash, hash)
     values (?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?)`,
    [fields.id, fields.at, fields.actor, fields.action, fields.target, fields.outcome, fields.requestId, JSON.stringify(fields.details), fields.prevHash, hash],
  );
  return Object.assign(new AuditEvent(), fields, { hash });
}

/** Appends one event in a transaction of its own: for outcomes no transaction carries (a denial, a failed mutation). */
export async function recordAuditEvent(orm: MikroORM, event: AuditEventInput): Promise<AuditEvent> {
  return orm.em.fork().transactional((em) => appendAuditEvent(em, event));
}

/** Newest first, `beforeId` being the cursor. */
export async function listAuditEvents(
  em: EntityManager,
  filter: AuditEventFilter,
  first: number,
  beforeId: string | null,
): Promise<{ items: AuditEvent[]; hasNextPage: boolean }> {
  const where: Record<string, unknown> = {};
  for (const key of ["actor", "action", "target", "outcome", "requestId"] as const) {
    if (filter[key] != null) where[key] = filter[key];
  }
  if (beforeId) where.id = { $lt: beforeId };
  const items = await em.find(AuditEvent, where, { orderBy: { id: "desc" }, limit: first + 1 });
  return { items: items.slice(0, first), hasNextPage: items.length > first };
}
