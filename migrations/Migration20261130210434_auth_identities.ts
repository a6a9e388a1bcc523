import { Migration } from "@mikro-orm/migrations";

/** Users seen through the identity provider, and API tokens (stored as SHA-256 hashes only). */
export class Migration20261130210434 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "api_token" ("id" uuid not null, "name" text not null, "owner_subject" text not null, "roles" jsonb not null, "token_hash" text not null, "prefix" text not null, "created_at" timestamptz not null, "expires_at" timestamptz null, "last_used_at" timestamptz null, "revoked_at" timestamptz null, "revoked_by" text null, constraint "api_token_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "api_token_owner_subject_idx" on "api_token" ("owner_subject");`);
    this.addSql(`alter table "api_token" add constraint "api_token_token_hash_unique" unique ("token_hash");`);
    this.addSql(
      `create table "fem_user" ("subject" text not null, "display_name" text null, "email" text null, "roles" jsonb not null, "created_at" timestamptz not null, "last_seen_at" timestamptz null, constraint "fem_user_pkey" primary key ("subject"));`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "fem_user";`);
    this.addSql(`drop table if exists "api_token";`);
  }
}
