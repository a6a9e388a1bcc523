import { Migration } from '@mikro-orm/migrations';

/**
 * Datasets: what a node's agent reported in its last heartbeat (`[{ "name", "description",
 * "labels" }]`, never a path), and the names each task reads.
 */
export class Migration20261201094500 extends Migration {

  override async up(): Promise<void> {
    // The defaults fill existing rows only; the entities set the values of new ones.
    this.addSql(`alter table "node" add column "datasets" jsonb not null default '[]';`);
    this.addSql(`alter table "node" alter column "datasets" drop default;`);
    this.addSql(`alter table "task" add column "datasets" jsonb not null default '[]';`);
    this.addSql(`alter table "task" alter column "datasets" drop default;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "task" drop column "datasets";`);
    this.addSql(`alter table "node" drop column "datasets";`);
  }

}
