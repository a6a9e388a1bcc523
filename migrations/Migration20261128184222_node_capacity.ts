import { Migration } from '@mikro-orm/migrations';

/** A node's default capacity matches fem-agent's default (2). */
export class Migration20261128184222 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "node" alter column "capacity" type int using ("capacity"::int);`);
    this.addSql(`alter table "node" alter column "capacity" set default 2;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "node" alter column "capacity" type int4 using ("capacity"::int4);`);
    this.addSql(`alter table "node" alter column "capacity" set default 1;`);
  }

}
