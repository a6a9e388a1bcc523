import { Entity, PrimaryKey, Property } from "@mikro-orm/core";
import type { GlobalRole } from "./identity.js";

/** A person or service seen through the identity provider, keyed by its subject (`sub`). */
@Entity({ tableName: "fem_user" })
export class User {
  @PrimaryKey({ type: "text" })
  subject!: string;

  @Property({ type: "text", nullable: true })
  displayName: string | null = null;

  @Property({ type: "text", nullable: true })
  email: string | null = null;

  /** Global roles held, as last granted. */
  @Property({ type: "json" })
  roles: GlobalRole[] = [];

  @Property({ type: "datetime" })
  createdAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  lastSeenAt: Date | null = null;
}
