import { Entity, Index, PrimaryKey, Property } from "@mikro-orm/core";
import { Field, ID, ObjectType } from "type-graphql";
import { RunState } from "../kernel/index.js";

/** What a user submits: a graph of tasks accepted atomically. */
@Entity({ tableName: "workflow" })
@Index({ properties: ["submittedAt", "id"] })
@ObjectType({ description: "A submitted graph of tasks, accepted atomically (an 'execution' in the public FEM)." })
export class Workflow {
  @PrimaryKey({ type: "uuid" })
  @Field(() => ID)
  id!: string;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  name: string | null = null;

  @Property({ type: "text", nullable: true, unique: true })
  @Field(() => String, { nullable: true })
  idempotencyKey: string | null = null;

  /** sha256 of the normalised submission, to tell a retry from a different workflow. */
  @Property({ type: "text" })
  contentHash!: string;

  @Property({ type: "text" })
  @Field(() => RunState)
  state: RunState = RunState.QUEUED;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  submittedBy: string | null = null;

  @Property({ type: "datetime" })
  @Field(() => Date)
  submittedAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  finishedAt: Date | null = null;
}
