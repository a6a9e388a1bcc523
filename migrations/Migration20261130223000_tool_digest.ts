import { Migration } from '@mikro-orm/migrations';

/**
 * A tool's content digest, set at registration. Nullable: tools registered before it have none
 * stored, and their digest is computed from the definition when read (src/shared/tool-digest.ts);
 * SQL cannot compute it the way the agent does, so there is no backfill here.
 */
export class Migration20261130223000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "tool" add column "digest" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "tool" drop column "digest";`);
  }

}
