import { Entity, PrimaryKey, Property } from "@mikro-orm/core";
import { GlobalRole } from "../kernel/index.js";

/** A global role granted in the orchestrator's database (besides what the identity provider's claim says). */
@Entity({ tableName: "role_grant" })
export class RoleGrant {
  @PrimaryKey({ type: "text" })
  subject!: string;

  @PrimaryKey({ type: "text" })
  role!: GlobalRole;

  @Property({ type: "text" })
  grantedBy!: string;

  @Property({ type: "datetime" })
  grantedAt: Date = new Date();
}
