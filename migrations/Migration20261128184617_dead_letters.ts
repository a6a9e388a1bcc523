import { Migration } from '@mikro-orm/migrations';

/** Dead-lettered messages, kept for operators. */
export class Migration20261128184617 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "dead_letter" ("id" bigserial primary key, "received_at" timestamptz not null, "queue" text null, "routing_key" text not null, "reason" text null, "delivery_count" int null, "message_id" text null, "body" text not null, "headers" jsonb not null);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "dead_letter" cascade;`);
  }

}
