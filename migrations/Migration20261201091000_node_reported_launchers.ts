import { Migration } from '@mikro-orm/migrations';

/**
 * The launchers a node's agent reported in its last heartbeat, each with the isolation it gives
 * (`[{ "name": "sandbox", "isolation": {…} }]`; isolation null for agents that send names only).
 * Distinct from `launchers`, which the administrator registered and the scheduler checks.
 */
export class Migration20261201091000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "node" add column "reported_launchers" jsonb not null default '[]';`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "node" drop column "reported_launchers";`);
  }

}
