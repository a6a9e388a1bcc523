import { Entity, Index, ManyToOne, PrimaryKey, Property, Unique } from "@mikro-orm/core";
import { Field, ID, ObjectType } from "type-graphql";
import { RunState } from "../kernel/index.js";

/** What a user submits: a graph of tasks accepted atomically. */
@Entity({ tableName: "workflow" })
@Index({ properties: ["submittedAt", "id"] })
@Unique({ properties: ["submittedBy", "idempotencyKey"] })
@ObjectType({ description: "A submitted graph of tasks, accepted atomically (an 'execution' in the public FEM)." })
export class Workflow {
  @PrimaryKey({ type: "uuid" })
  @Field(() => ID)
  id!: string;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  name: string | null = null;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "Unique per submitter." })
  idempotencyKey: string | null = null;

  /** The project the workflow belongs to (null only for workflows submitted before projects existed). */
  @ManyToOne("Project", { mapToPk: true, nullable: true, fieldName: "project_id" })
  @Index()
  @Field(() => ID, { nullable: true })
  projectId: string | null = null;

  /** sha256 of the normalised submission, to tell a retry from a different workflow. */
  @Property({ type: "text" })
  contentHash!: string;

  @Property({ type: "text" })
  @Field(() => RunState)
  state: RunState = RunState.QUEUED;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "The subject of the caller who submitted it." })
  submittedBy: string | null = null;

  @Property({ type: "datetime" })
  @Field(() => Date)
  submittedAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  finishedAt: Date | null = null;
}
