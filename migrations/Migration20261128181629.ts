import { Migration } from '@mikro-orm/migrations';

export class Migration20261128181629 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "node" ("id" text not null, "name" text null, "labels" jsonb not null, "capacity" int not null default 1, "launchers" jsonb not null, "allowed_tools" jsonb not null, "admin_state" text check ("admin_state" in ('ACTIVE', 'DRAINING', 'DISABLED')) not null default 'ACTIVE', "connectivity" text check ("connectivity" in ('ONLINE', 'OFFLINE')) not null default 'OFFLINE', "last_heartbeat_at" timestamptz null, "health" jsonb null, "credential_hash" text not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "node_pkey" primary key ("id"));`);

    this.addSql(`create table "outbox" ("id" bigserial primary key, "message_id" uuid not null, "exchange" text not null, "routing_key" text not null, "payload" jsonb not null, "created_at" timestamptz not null, "sent_at" timestamptz null, "attempts" int not null default 0, "last_error" text null);`);
    this.addSql(`alter table "outbox" add constraint "outbox_message_id_unique" unique ("message_id");`);
    this.addSql(`create index outbox_unsent_idx on outbox (id) where sent_at is null;`);

    this.addSql(`create table "tool" ("id" uuid not null, "name" text not null, "version" text not null, "executable" text not null, "image" text null, "launcher" text not null default 'process', "args" jsonb not null, "env" jsonb not null, "timeout_seconds" int null, "outputs" jsonb not null, "result_file" text null, "created_at" timestamptz not null, constraint "tool_pkey" primary key ("id"));`);
    this.addSql(`alter table "tool" add constraint "tool_name_version_unique" unique ("name", "version");`);

    this.addSql(`create table "workflow" ("id" uuid not null, "name" text null, "idempotency_key" text null, "content_hash" text not null, "state" text not null default 'QUEUED', "submitted_by" text null, "submitted_at" timestamptz not null, "finished_at" timestamptz null, constraint "workflow_pkey" primary key ("id"));`);
    this.addSql(`alter table "workflow" add constraint "workflow_idempotency_key_unique" unique ("idempotency_key");`);
    this.addSql(`create index "workflow_submitted_at_id_index" on "workflow" ("submitted_at", "id");`);

    this.addSql(`create table "task" ("id" uuid not null, "workflow_id" uuid not null, "key" text not null, "tool_id" uuid not null, "params" jsonb not null, "node_params" jsonb not null, "node_ids" jsonb not null, "depends_on_ids" jsonb not null, "priority" int not null default 0, "timeout_seconds" int null, "min_succeeded" int null, "state" text not null default 'QUEUED', "created_at" timestamptz not null, "finished_at" timestamptz null, constraint "task_pkey" primary key ("id"));`);
    this.addSql(`create index "task_tool_id_index" on "task" ("tool_id");`);
    this.addSql(`alter table "task" add constraint "task_workflow_id_key_unique" unique ("workflow_id", "key");`);

    this.addSql(`create table "run" ("id" uuid not null, "task_id" uuid not null, "workflow_id" uuid not null, "node_id" text not null, "attempt" int not null default 1, "state" text not null default 'PENDING', "failure_reason" text null, "exit_code" int null, "message" text null, "argv" jsonb not null, "env" jsonb not null, "timeout_seconds" int null, "created_at" timestamptz not null, "queued_at" timestamptz null, "accepted_at" timestamptz null, "started_at" timestamptz null, "finished_at" timestamptz null, "wall_ms" double precision null, "cpu_user_ms" double precision null, "cpu_system_ms" double precision null, "peak_rss_bytes" double precision null, "output_bytes" double precision null, "log_bytes" double precision not null default 0, "log_line_count" int not null default 0, "result" jsonb null, constraint "run_pkey" primary key ("id"));`);
    this.addSql(`create index "run_task_id_index" on "run" ("task_id");`);
    this.addSql(`create index "run_workflow_id_index" on "run" ("workflow_id");`);
    this.addSql(`create index "run_node_id_state_index" on "run" ("node_id", "state");`);
    this.addSql(`alter table "run" add constraint "run_task_id_node_id_attempt_unique" unique ("task_id", "node_id", "attempt");`);

    this.addSql(`create table "log_line" ("run_id" uuid not null, "seq" int not null, "stream" text not null, "at" timestamptz not null, "text" text not null, constraint "log_line_pkey" primary key ("run_id", "seq"));`);

    this.addSql(`alter table "task" add constraint "task_workflow_id_foreign" foreign key ("workflow_id") references "workflow" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "task" add constraint "task_tool_id_foreign" foreign key ("tool_id") references "tool" ("id") on update cascade;`);

    this.addSql(`alter table "run" add constraint "run_task_id_foreign" foreign key ("task_id") references "task" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "run" add constraint "run_workflow_id_foreign" foreign key ("workflow_id") references "workflow" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "run" add constraint "run_node_id_foreign" foreign key ("node_id") references "node" ("id") on update cascade;`);

    this.addSql(`alter table "log_line" add constraint "log_line_run_id_foreign" foreign key ("run_id") references "run" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "run" drop constraint "run_node_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_tool_id_foreign";`);

    this.addSql(`alter table "task" drop constraint "task_workflow_id_foreign";`);

    this.addSql(`alter table "run" drop constraint "run_workflow_id_foreign";`);

    this.addSql(`alter table "run" drop constraint "run_task_id_foreign";`);

    this.addSql(`alter table "log_line" drop constraint "log_line_run_id_foreign";`);

    this.addSql(`drop table if exists "node" cascade;`);

    this.addSql(`drop table if exists "outbox" cascade;`);

    this.addSql(`drop table if exists "tool" cascade;`);

    this.addSql(`drop table if exists "workflow" cascade;`);

    this.addSql(`drop table if exists "task" cascade;`);

    this.addSql(`drop table if exists "run" cascade;`);

    this.addSql(`drop table if exists "log_line" cascade;`);
  }

}
