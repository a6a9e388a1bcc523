import { Entity, PrimaryKey, Property } from "@mikro-orm/core";
import { randomUUID } from "node:crypto";
import { Field, ID, ObjectType } from "type-graphql";
import { GlobalRole } from "../kernel/index.js";

/**
 * A long-lived credential for scripts and services. Only the SHA-256 of the token is stored; the
 * token itself is shown once, when it is created.
 */
@Entity({ tableName: "api_token" })
@ObjectType({ description: "An API token's record; the token itself is shown only when it is created." })
export class ApiToken {
  @PrimaryKey({ type: "uuid" })
  @Field(() => ID)
  id: string = randomUUID();

  @Property({ type: "text" })
  @Field(() => String)
  name!: string;

  /** The subject the token acts as. */
  @Property({ type: "text", index: "api_token_owner_subject_idx" })
  @Field(() => String)
  ownerSubject!: string;

  /** Global roles the token grants. */
  @Property({ type: "json" })
  @Field(() => [GlobalRole])
  roles: GlobalRole[] = [];

  /** Lower-case hex SHA-256 of the whole token. */
  @Property({ type: "text", unique: "api_token_token_hash_unique" })
  tokenHash!: string;

  /** The token's first characters, for people to tell tokens apart. */
  @Property({ type: "text" })
  @Field(() => String)
  prefix!: string;

  @Property({ type: "datetime" })
  @Field(() => Date)
  createdAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  expiresAt: Date | null = null;

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  lastUsedAt: Date | null = null;

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  revokedAt: Date | null = null;

  @Property({ type: "text", nullable: true })
  revokedBy: string | null = null;
}
