import { Migration } from "@mikro-orm/migrations";

/** Projects with member users and member nodes, node operators, roles granted here; workflows belong to a project, idempotency keys are unique per submitter. */
export class Migration20261130212104 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "node_operator" ("node_id" text not null, "subject" text not null, "granted_at" timestamptz not null, constraint "node_operator_pkey" primary key ("node_id", "subject"));`);

    this.addSql(`create table "project" ("id" uuid not null, "name" text not null, "description" text null, "created_by" text not null, "created_at" timestamptz not null, constraint "project_pkey" primary key ("id"));`);
    this.addSql(`alter table "project" add constraint "project_name_unique" unique ("name");`);

    this.addSql(`create table "project_member" ("project_id" uuid not null, "subject" text not null, "role" text not null, "added_at" timestamptz not null, constraint "project_member_pkey" primary key ("project_id", "subject"));`);

    this.addSql(`create table "project_node" ("project_id" uuid not null, "node_id" text not null, "added_at" timestamptz not null, constraint "project_node_pkey" primary key ("project_id", "node_id"));`);

    this.addSql(`create table "role_grant" ("subject" text not null, "role" text not null, "granted_by" text not null, "granted_at" timestamptz not null, constraint "role_grant_pkey" primary key ("subject", "role"));`);

    this.addSql(`alter table "node_operator" add constraint "node_operator_node_id_foreign" foreign key ("node_id") references "node" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "project_member" add constraint "project_member_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "project_node" add constraint "project_node_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "project_node" add constraint "project_node_node_id_foreign" foreign key ("node_id") references "node" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "workflow" drop constraint "workflow_idempotency_key_unique";`);

    this.addSql(`alter table "workflow" add column "project_id" uuid null;`);
    this.addSql(`alter table "workflow" add constraint "workflow_project_id_foreign" foreign key ("project_id") references "project" ("id") on update cascade on delete set null;`);
    this.addSql(`create index "workflow_project_id_index" on "workflow" ("project_id");`);
    this.addSql(`alter table "workflow" add constraint "workflow_submitted_by_idempotency_key_unique" unique ("submitted_by", "idempotency_key");`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "project_member" drop constraint "project_member_project_id_foreign";`);

    this.addSql(`alter table "project_node" drop constraint "project_node_project_id_foreign";`);

    this.addSql(`alter table "workflow" drop constraint "workflow_project_id_foreign";`);

    this.addSql(`drop table if exists "node_operator" cascade;`);

    this.addSql(`drop table if exists "project" cascade;`);

    this.addSql(`drop table if exists "project_member" cascade;`);

    this.addSql(`drop table if exists "project_node" cascade;`);

    this.addSql(`drop table if exists "role_grant" cascade;`);

    this.addSql(`drop index "workflow_project_id_index";`);
    this.addSql(`alter table "workflow" drop constraint "workflow_submitted_by_idempotency_key_unique";`);
    this.addSql(`alter table "workflow" drop column "project_id";`);

    this.addSql(`alter table "workflow" add constraint "workflow_idempotency_key_unique" unique ("idempotency_key");`);
  }
}
