import { Migration } from "@mikro-orm/migrations";

/** Capacity-aware dispatch and retries: when a run was handed to its node, when a retry may start, a task's retry policy. */
export class Migration20261128183512 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "task" add column "retry" jsonb not null default '{"maxAttempts":1,"backoffSeconds":1,"retryOn":["NODE_LOST"]}';`);
    this.addSql(`alter table "task" alter column "retry" drop default;`);
    this.addSql(`alter table "run" add column "dispatched_at" timestamptz null, add column "not_before" timestamptz null;`);
    // Runs queued before this migration were already published to their node's queue.
    this.addSql(`update "run" set "dispatched_at" = coalesce("queued_at", "created_at") where "state" in ('QUEUED', 'ACCEPTED', 'RUNNING');`);
    this.addSql(`create index run_waiting_idx on run (node_id) where state = 'QUEUED' and dispatched_at is null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists run_waiting_idx;`);
    this.addSql(`alter table "run" drop column "dispatched_at", drop column "not_before";`);
    this.addSql(`alter table "task" drop column "retry";`);
  }
}
