import { Migration } from '@mikro-orm/migrations';

/**
 * How long a dispatched run has been missing from its live node's heartbeats: the number of
 * consecutive heartbeats that did not list it, when the first of them arrived, and (for a QUEUED
 * run) when its node's queue was seen empty meanwhile. The node sweep settles such runs
 * (src/runs/lifecycle/unreported-runs.ts).
 */
export class Migration20261201090000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "run" add column "unreported_heartbeats" int not null default 0, add column "unreported_since" timestamptz null, add column "queue_empty_at" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "run" drop column "unreported_heartbeats", drop column "unreported_since", drop column "queue_empty_at";`);
  }

}
