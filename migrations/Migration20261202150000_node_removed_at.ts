import { Migration } from '@mikro-orm/migrations';

/** Removed nodes stay as rows (their runs and accounting refer to them), marked with when they were removed. */
export class Migration20261202150000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "node" add column "removed_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "node" drop column "removed_at";`);
  }

}
