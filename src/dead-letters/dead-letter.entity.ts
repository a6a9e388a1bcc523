import { Entity, PrimaryKey, Property } from "@mikro-orm/core";
import { GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, Int, ObjectType } from "type-graphql";

/** A message the broker dead-lettered (malformed, or over its delivery limit), kept for operators. */
@Entity({ tableName: "dead_letter" })
@ObjectType({ description: "A message that could not be handled: malformed, or failing past its redelivery limit." })
export class DeadLetter {
  @PrimaryKey({ type: "bigint", autoincrement: true })
  @Field(() => ID)
  id!: string;

  @Property({ type: "datetime" })
  @Field(() => Date)
  receivedAt: Date = new Date();

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "The queue the message was dead-lettered from." })
  queue: string | null = null;

  @Property({ type: "text" })
  @Field(() => String)
  routingKey!: string;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "rejected (malformed), delivery_limit (kept failing), expired, maxlen." })
  reason: string | null = null;

  @Property({ type: "integer", nullable: true })
  @Field(() => Int, { nullable: true })
  deliveryCount: number | null = null;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  messageId: string | null = null;

  @Property({ type: "text" })
  @Field(() => String, { description: "The body as text, cut at 64 KiB." })
  body!: string;

  @Property({ type: "json" })
  @Field(() => GraphQLJSONObject)
  headers: Record<string, unknown> = {};
}
