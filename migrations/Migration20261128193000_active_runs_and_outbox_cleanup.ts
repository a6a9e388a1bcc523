import { Migration } from "@mikro-orm/migrations";

/** Indexes for the scheduler's and sweep's view of active runs, and for pruning sent outbox rows. */
export class Migration20261128193000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index run_active_idx on run (node_id) where state in ('QUEUED', 'ACCEPTED', 'RUNNING');`);
    this.addSql(`create index outbox_sent_at_idx on outbox (sent_at) where sent_at is not null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists outbox_sent_at_idx;`);
    this.addSql(`drop index if exists run_active_idx;`);
  }
}
