import { Entity, PrimaryKey, Property } from "@mikro-orm/core";
import { randomUUID } from "node:crypto";
import type { GlobalRole } from "./identity.js";

/**
 * A long-lived credential for scripts and services. Only the SHA-256 of the token is stored; the
 * token itself is shown once, when it is created.
 */
@Entity({ tableName: "api_token" })
export class ApiToken {
  @PrimaryKey({ type: "uuid" })
  id: string = randomUUID();

  @Property({ type: "text" })
  name!: string;

  /** The subject the token acts as. */
  @Property({ type: "text", index: "api_token_owner_subject_idx" })
  ownerSubject!: string;

  /** Global roles the token grants. */
  @Property({ type: "json" })
  roles: GlobalRole[] = [];

  /** Lower-case hex SHA-256 of the whole token. */
  @Property({ type: "text", unique: "api_token_token_hash_unique" })
  tokenHash!: string;

  /** The token's first characters, for people to tell tokens apart. */
  @Property({ type: "text" })
  prefix!: string;

  @Property({ type: "datetime" })
  createdAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  expiresAt: Date | null = null;

  @Property({ type: "datetime", nullable: true })
  lastUsedAt: Date | null = null;

  @Property({ type: "datetime", nullable: true })
  revokedAt: Date | null = null;

  @Property({ type: "text", nullable: true })
  revokedBy: string | null = null;
}
