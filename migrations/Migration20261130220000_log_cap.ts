import { Migration } from '@mikro-orm/migrations';

/** Where a run's log was truncated by the per-run cap, and how much was dropped after it. */
export class Migration20261130220000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "run" add column "log_truncated_seq" int null, add column "log_dropped_to_seq" int null, add column "log_dropped_bytes" double precision not null default 0;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "run" drop column "log_truncated_seq", drop column "log_dropped_to_seq", drop column "log_dropped_bytes";`);
  }

}
