import { Migration } from "@mikro-orm/migrations";

/** Output files of runs, as their nodes' manifests list them, with their release state and decision. */
export class Migration20261201101000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "artifact" ("id" uuid not null, "run_id" uuid not null, "node_id" text not null, "path" text not null, "size_bytes" double precision null, "sha256" text null, "state" text not null, "release_policy" text not null, "reason" text null, "decided_by" text null, "decided_at" timestamptz null, "comment" text null, "created_at" timestamptz not null, constraint "artifact_pkey" primary key ("id"));`);
    this.addSql(`create index "artifact_run_id_index" on "artifact" ("run_id");`);
    this.addSql(`alter table "artifact" add constraint "artifact_run_id_path_unique" unique ("run_id", "path");`);
    this.addSql(`alter table "artifact" add constraint "artifact_run_id_foreign" foreign key ("run_id") references "run" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "artifact" cascade;`);
  }

}
