import { Migration } from "@mikro-orm/migrations";

/** The transfer of released artifacts: when a file was stored, when its last chunk came, checksum failures, asks since the last chunk. */
export class Migration20261201120000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "artifact" add column "stored_at" timestamptz null, add column "last_chunk_at" timestamptz null, add column "checksum_failures" int not null default 0, add column "transfer_asks" int not null default 0;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "artifact" drop column "stored_at", drop column "last_chunk_at", drop column "checksum_failures", drop column "transfer_asks";`);
  }

}
