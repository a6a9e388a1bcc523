/** Keeps dead-lettered messages in PostgreSQL so operators can see them (`deadLetters` query). */
import type { EntityManager } from "@mikro-orm/postgresql";
import { query } from "../db/sql.js";
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

/** Stores one dead letter; where it came from and why are read from its `x-death` header. */
export async function storeDeadLetter(em: EntityManager, data: DeadLetterData): Promise<void> {
  const death = ((data.headers["x-death"] as XDeath[] | undefined) ?? [])[0] ?? {};
  const deliveryCount = Number(data.headers["x-delivery-count"] ?? death.count ?? NaN);
  await query(
    em,
    `insert into dead_letter (received_at, queue, routing_key, reason, delivery_count, message_id, body, headers)
     values (now(), ?, ?, ?, ?, ?, ?, ?::jsonb)`,
    [
      death.queue ?? null,
      data.routingKey,
      death.reason ?? null,
      Number.isFinite(deliveryCount) ? deliveryCount : null,
      data.messageId,
      data.body.slice(0, MAX_DEAD_LETTER_BODY_CHARS),
      JSON.stringify(data.headers, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)),
    ],
  );
}

/** Newest first. */
export async function listDeadLetters(em: EntityManager, first: number, beforeId: string | null): Promise<{ items: DeadLetter[]; hasNextPage: boolean }> {
  const items = await em.find(DeadLetter, beforeId ? { id: { $lt: beforeId } } : {}, { orderBy: { id: "desc" }, limit: first + 1 });
  return { items: items.slice(0, first), hasNextPage: items.length > first };
}
