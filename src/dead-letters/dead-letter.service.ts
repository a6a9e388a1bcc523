/** Keeps dead-lettered messages in PostgreSQL so operators can see them (`deadLetters` query). */
import type { EntityManager } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
import { DEAD_LETTER_HEADERS } from "../messaging/contracts.js";
import { fitsPgInt, replaceNul, replaceNulDeep } from "../shared/index.js";
import { DeadLetter } from "./dead-letter.entity.js";

export const MAX_DEAD_LETTER_BODY_CHARS = 65_536;

export interface DeadLetterData {
  routingKey: string;
  messageId: string | null;
  body: string;
  headers: Record<string, unknown>;
}

interface XDeath {
  queue?: string;
  reason?: string;
  count?: number;
}

/**
 * Stores one dead letter; where it came from and why are read from its `x-fem-reason` and
 * `x-fem-queue` headers when the orchestrator republished it, else from its `x-death` header.
 * NUL characters (which PostgreSQL refuses) in its body and headers become U+FFFD.
 */
export async function storeDeadLetter(em: EntityManager, data: DeadLetterData): Promise<void> {
  const death = ((data.headers["x-death"] as XDeath[] | undefined) ?? [])[0] ?? {};
  const deliveryCount = Number(data.headers["x-delivery-count"] ?? death.count ?? NaN);
  const own = (name: string) => (typeof data.headers[name] === "string" ? (data.headers[name] as string) : null);
  const headers = replaceNulDeep(JSON.parse(JSON.stringify(data.headers, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))) as unknown).value;
  await query(
    em,
    `insert into dead_letter (received_at, queue, routing_key, reason, delivery_count, message_id, body, headers)
     values (now(), ?, ?, ?, ?, ?, ?, ?::jsonb)`,
    [
      own(DEAD_LETTER_HEADERS.queue) ?? death.queue ?? null,
      replaceNul(data.routingKey).text,
      own(DEAD_LETTER_HEADERS.reason) ?? death.reason ?? null,
      Number.isFinite(deliveryCount) && fitsPgInt(deliveryCount) ? deliveryCount : null,
      data.messageId === null ? null : replaceNul(data.messageId).text,
      replaceNul(data.body.slice(0, MAX_DEAD_LETTER_BODY_CHARS)).text,
      JSON.stringify(headers),
    ],
  );
}

/** Deletes up to `limit` dead letters received more than `retentionMs` ago. Returns how many. */
export async function pruneDeadLetters(em: EntityManager, retentionMs: number, limit = 5_000): Promise<number> {
  const rows = await query(
    em,
    `delete from dead_letter where id in (select id from dead_letter where received_at < now() - (? * interval '1 millisecond') order by id limit ?) returning id`,
    [retentionMs, limit],
  );
  return rows.length;
}

/** Newest first. */
export async function listDeadLetters(em: EntityManager, first: number, beforeId: string | null): Promise<{ items: DeadLetter[]; hasNextPage: boolean }> {
  const items = await em.find(DeadLetter, beforeId ? { id: { $lt: beforeId } } : {}, { orderBy: { id: "desc" }, limit: first + 1 });
  return { items: items.slice(0, first), hasNextPage: items.length > first };
}
