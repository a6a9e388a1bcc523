import { Migration } from "@mikro-orm/migrations";

/**
 * The hash-chained audit log. The triggers refuse UPDATE, DELETE and TRUNCATE from anyone who does
 * not disable them first; the hash chain is what detects those who do (a superuser, the owner).
 */
export class Migration20261130211500 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "audit_event" ("id" bigserial primary key, "at" timestamptz not null, "actor" text not null, "action" text not null, "target" text null, "outcome" text check ("outcome" in ('OK', 'DENIED', 'FAILED', 'UNAUTHENTICATED')) not null, "request_id" text not null, "details" jsonb not null, "prev_hash" text not null, "hash" text not null);`,
    );
    this.addSql(`create function audit_event_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'audit_event is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end;
$$;`);
    this.addSql(`create trigger audit_event_no_update_or_delete before update or delete on "audit_event" for each row execute function audit_event_append_only();`);
    this.addSql(`create trigger audit_event_no_truncate before truncate on "audit_event" for each statement execute function audit_event_append_only();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "audit_event" cascade;`);
    this.addSql(`drop function if exists audit_event_append_only();`);
  }
}
