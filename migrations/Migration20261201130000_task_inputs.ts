import { Migration } from '@mikro-orm/migrations';

/** Files between tasks: the artifacts of upstream tasks each task takes (`[{ "from", "files" }]`). */
export class Migration20261201130000 extends Migration {

  override async up(): Promise<void> {
    // The default fills existing rows only; the entity sets the value of new ones.
    this.addSql(`alter table "task" add column "inputs" jsonb not null default '[]';`);
    this.addSql(`alter table "task" alter column "inputs" drop default;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "task" drop column "inputs";`);
  }

}
