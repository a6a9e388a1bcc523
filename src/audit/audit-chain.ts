/** Recomputes the audit chain to find rows edited, deleted or reordered behind the application's back. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import { GENESIS_HASH, hashAuditFields } from "./audit-hash.js";

/** Rows read per statement while verifying. @default 1_000 */
const VERIFY_BATCH_ROWS = 1_000;

export interface AuditChainReport {
  intact: boolean;
  /** Rows checked, the broken one included. */
  checked: number;
  /** The first row whose hash or link does not hold. */
  firstBrokenId: string | null;
  reason: string | null;
  /** The newest row that holds and its hash: kept elsewhere, they later reveal a cut or rewritten chain. */
  lastId: string | null;
  lastHash: string | null;
}

export interface VerifyOptions {
  /** First row to check; the row before it supplies the expected link and is trusted, not checked. @default the first row */
  fromId?: string | null;
  /** Most rows to check. @default every row */
  limit?: number | null;
}

interface AuditRow {
  id: string;
  /** Milliseconds since the epoch as exact decimal text, so a sub-millisecond edit is not rounded away. */
  at_ms: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  request_id: string;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

/** Why `row` does not hold, or null when it does; `previous` is the row before it in id order. */
function checkRow(row: AuditRow, previous: { id: string | null; hash: string }): string | null {
  const { at_ms: atMs, request_id: requestId, prev_hash: prevHash, hash, ...rest } = row;
  if (prevHash !== previous.hash) {
    const gap = previous.id !== null && BigInt(row.id) - BigInt(previous.id) > 1n ? ` (ids after ${previous.id} are missing)` : "";
    return `prev_hash does not match the hash of ${previous.id === null ? "the chain's start" : `row ${previous.id}`}: a row was deleted or reordered${gap}`;
  }
  // Appends write whole milliseconds; anything finer was written by someone else.
  if (!/^-?\d+(\.0*)?$/.test(atMs)) return "at has a sub-millisecond part: the row was edited";
  if (hashAuditFields({ ...rest, at: new Date(Number.parseInt(atMs, 10)), requestId, prevHash }) !== hash) return "hash does not match the row's content: the row was edited";
  return null;
}

/** Walks the chain in id order from `fromId` (or the start) and stops at the first row that does not hold. */
export async function verifyAuditChain(em: EntityManager, options: VerifyOptions = {}): Promise<AuditChainReport> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  let previous: { id: string | null; hash: string } = { id: null, hash: GENESIS_HASH };
  if (options.fromId != null) {
    const [before] = await query<{ id: string; hash: string }>(em, "select id::text as id, hash from audit_event where id < ? order by audit_event.id desc limit 1", [options.fromId]);
    if (before) previous = before;
  }
  let checked = 0;
  let afterId = options.fromId != null ? (BigInt(options.fromId) - 1n).toString() : "0";
  while (checked < limit) {
    // `order by audit_event.id`: a bare `id` would sort by the text alias ("10" before "2").
    const rows = await query<AuditRow>(
      em,
      `select id::text as id, (extract(epoch from at) * 1000)::text as at_ms, actor, action, target, outcome, request_id, details, prev_hash, hash
       from audit_event where id > ? order by audit_event.id limit ?`,
      [afterId, Math.min(VERIFY_BATCH_ROWS, limit - checked)],
    );
    for (const row of rows) {
      checked += 1;
      const reason = checkRow(row, previous);
      if (reason) return { intact: false, checked, firstBrokenId: row.id, reason, lastId: previous.id, lastHash: previous.id === null ? null : previous.hash };
      previous = { id: row.id, hash: row.hash };
    }
    if (rows.length === 0) break;
    afterId = rows[rows.length - 1].id;
  }
  return { intact: true, checked, firstBrokenId: null, reason: null, lastId: previous.id, lastHash: previous.id === null ? null : previous.hash };
}
