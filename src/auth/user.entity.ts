import { Entity, PrimaryKey, Property } from "@mikro-orm/core";
import { Field, ObjectType } from "type-graphql";
import { GlobalRole } from "../kernel/index.js";

/** A person or service seen through the identity provider, keyed by its subject (`sub`). */
@Entity({ tableName: "fem_user" })
@ObjectType({ description: "A person seen through the identity provider." })
export class User {
  @PrimaryKey({ type: "text" })
  @Field(() => String)
  subject!: string;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  displayName: string | null = null;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  email: string | null = null;

  /** Global roles held, as last granted. */
  @Property({ type: "json" })
  @Field(() => [GlobalRole], { description: "Roles the identity provider's claim gave at the last sign-in." })
  roles: GlobalRole[] = [];

  @Property({ type: "datetime" })
  @Field(() => Date)
  createdAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  lastSeenAt: Date | null = null;
}
