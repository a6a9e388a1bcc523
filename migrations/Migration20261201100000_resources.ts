import { Migration } from '@mikro-orm/migrations';

/**
 * Resource requests and node totals (`{ "cpus": 2, "memoryMiB": 8192, "gpus": 1, "diskMiB": 1024 }`,
 * a missing amount not requested or not known): a tool's default requests, a task's requests (the
 * tool's with the task's overrides, what each of its runs holds on its node) and the totals
 * registered for a node. Existing rows request nothing and register nothing.
 */
export class Migration20261201100000 extends Migration {

  override async up(): Promise<void> {
    // The defaults fill existing rows only; the entities set the value of new ones.
    this.addSql(`alter table "tool" add column "resources" jsonb not null default '{}';`);
    this.addSql(`alter table "tool" alter column "resources" drop default;`);
    this.addSql(`alter table "task" add column "resources" jsonb not null default '{}';`);
    this.addSql(`alter table "task" alter column "resources" drop default;`);
    this.addSql(`alter table "node" add column "registered_resources" jsonb not null default '{}';`);
    this.addSql(`alter table "node" alter column "registered_resources" drop default;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "node" drop column "registered_resources";`);
    this.addSql(`alter table "task" drop column "resources";`);
    this.addSql(`alter table "tool" drop column "resources";`);
  }

}
