import { Entity, Index, PrimaryKey, Property } from "@mikro-orm/core";

/**
 * A message to publish, written in the same transaction as the change that caused it; the relay
 * publishes unsent rows with confirms and marks them sent.
 */
@Entity({ tableName: "outbox" })
@Index({ name: "outbox_unsent_idx", expression: "create index outbox_unsent_idx on outbox (id) where sent_at is null" })
@Index({ name: "outbox_sent_at_idx", expression: "create index outbox_sent_at_idx on outbox (sent_at) where sent_at is not null" })
export class OutboxMessage {
  @PrimaryKey({ type: "bigint", autoincrement: true })
  id!: string;

  @Property({ type: "uuid", unique: true })
  messageId!: string;

  @Property({ type: "text" })
  exchange!: string;

  @Property({ type: "text" })
  routingKey!: string;

  @Property({ type: "json" })
  payload!: unknown;

  @Property({ type: "datetime" })
  createdAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  sentAt: Date | null = null;

  @Property({ type: "integer" })
  attempts: number = 0;

  @Property({ type: "text", nullable: true })
  lastError: string | null = null;
}
