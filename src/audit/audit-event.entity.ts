import { Entity, Enum, PrimaryKey, Property } from "@mikro-orm/core";
import { GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, ObjectType, registerEnumType } from "type-graphql";

export enum AuditOutcome {
  OK = "OK",
  DENIED = "DENIED",
  FAILED = "FAILED",
  UNAUTHENTICATED = "UNAUTHENTICATED",
}

registerEnumType(AuditOutcome, { name: "AuditOutcome" });

/** One row of the append-only, hash-chained audit log; the migration forbids UPDATE, DELETE and TRUNCATE. */
@Entity({ tableName: "audit_event" })
@ObjectType({ description: "Something a caller did or tried to do: a mutation's outcome, or a denial." })
export class AuditEvent {
  @PrimaryKey({ type: "bigint", autoincrement: true })
  @Field(() => ID, { description: "Increasing in chain order; a rolled-back append leaves a gap, so gaps alone prove nothing." })
  id!: string;

  @Property({ type: "datetime" })
  @Field(() => Date)
  at!: Date;

  @Property({ type: "text" })
  @Field(() => String, { description: "The caller's subject, `anonymous`, or `system`." })
  actor!: string;

  @Property({ type: "text" })
  @Field(() => String, { description: "The mutation's field name, or an event such as `auth.denied`." })
  action!: string;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "What was acted on, as `kind:id` (e.g. `node:site-a`)." })
  target: string | null = null;

  @Enum({ items: () => AuditOutcome, type: "text" })
  @Field(() => AuditOutcome)
  outcome!: AuditOutcome;

  @Property({ type: "text" })
  @Field(() => String, { description: "The request's id, as sent in the `x-request-id` response header." })
  requestId!: string;

  @Property({ type: "json" })
  @Field(() => GraphQLJSONObject, { description: "Small facts (error code, operation name); never secrets or tokens." })
  details: Record<string, unknown> = {};

  @Property({ type: "text" })
  @Field(() => String, { description: "The previous row's hash (64 zeros for the first row)." })
  prevHash!: string;

  @Property({ type: "text" })
  @Field(() => String, { description: "Hex sha256 of this row's canonical JSON, prevHash included." })
  hash!: string;
}
