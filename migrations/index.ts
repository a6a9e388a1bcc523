/** Every migration in order; MikroORM runs them from this list (no directory scanning). */
import type { MigrationObject } from "@mikro-orm/core";
import { Migration20261128181629 } from "./Migration20261128181629.js";
import { Migration20261128183512 } from "./Migration20261128183512_scheduling.js";
import { Migration20261128184222 } from "./Migration20261128184222_node_capacity.js";
import { Migration20261128184617 } from "./Migration20261128184617_dead_letters.js";
import { Migration20261128193000 } from "./Migration20261128193000_active_runs_and_outbox_cleanup.js";
import { Migration20261130210434 } from "./Migration20261130210434_auth_identities.js";
import { Migration20261130212104 } from "./Migration20261130212104_projects.js";
import { Migration20261130211500 } from "./Migration20261130211500_audit_log.js";
import { Migration20261130220000 } from "./Migration20261130220000_log_cap.js";
import { Migration20261130223000 } from "./Migration20261130223000_tool_digest.js";
import { Migration20261201090000 } from "./Migration20261201090000_unreported_runs.js";
import { Migration20261201091000 } from "./Migration20261201091000_node_reported_launchers.js";
import { Migration20261201094500 } from "./Migration20261201094500_datasets.js";
import { Migration20261201100000 } from "./Migration20261201100000_resources.js";
import { Migration20261201101000 } from "./Migration20261201101000_artifacts.js";
import { Migration20261201120000 } from "./Migration20261201120000_artifact_transfer.js";
import { Migration20261201130000 } from "./Migration20261201130000_task_inputs.js";
import { Migration20261202150000 } from "./Migration20261202150000_node_removed_at.js";

export const migrationsList: MigrationObject[] = [
  { name: "Migration20261128181629", class: Migration20261128181629 },
  { name: "Migration20261128183512_scheduling", class: Migration20261128183512 },
  { name: "Migration20261128184222_node_capacity", class: Migration20261128184222 },
  { name: "Migration20261128184617_dead_letters", class: Migration20261128184617 },
  { name: "Migration20261128193000_active_runs_and_outbox_cleanup", class: Migration20261128193000 },
  { name: "Migration20261130210434_auth_identities", class: Migration20261130210434 },
  { name: "Migration20261130212104_projects", class: Migration20261130212104 },
  { name: "Migration20261130211500_audit_log", class: Migration20261130211500 },
  { name: "Migration20261130220000_log_cap", class: Migration20261130220000 },
  { name: "Migration20261130223000_tool_digest", class: Migration20261130223000 },
  { name: "Migration20261201090000_unreported_runs", class: Migration20261201090000 },
  { name: "Migration20261201091000_node_reported_launchers", class: Migration20261201091000 },
  { name: "Migration20261201094500_datasets", class: Migration20261201094500 },
  { name: "Migration20261201100000_resources", class: Migration20261201100000 },
  { name: "Migration20261201101000_artifacts", class: Migration20261201101000 },
  { name: "Migration20261201120000_artifact_transfer", class: Migration20261201120000 },
  { name: "Migration20261201130000_task_inputs", class: Migration20261201130000 },
  { name: "Migration20261202150000_node_removed_at", class: Migration20261202150000 },
];
