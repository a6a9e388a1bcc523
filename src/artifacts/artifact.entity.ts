import { Entity, Index, ManyToOne, PrimaryKey, Property, Unique } from "@mikro-orm/core";
import { Field, Float, ID, Int, ObjectType, registerEnumType } from "type-graphql";

/** Where an output file stands on its way off the node. */
export enum ArtifactState {
  /** On the node; nobody has asked for it (outputs of a run that did not succeed under `auto`). */
  ON_NODE = "ON_NODE",
  /** Waiting for the node's operator: through the API (`review`) or on the node (`local`). */
  PENDING_REVIEW = "PENDING_REVIEW",
  /** Released; the node sends it (on its own under `auto` and `local`, when told under `review`). */
  APPROVED = "APPROVED",
  /** Chunks are arriving; the file is not usable yet. */
  TRANSFERRING = "TRANSFERRING",
  /** Stored by the orchestrator and checked; may be downloaded. */
  AVAILABLE = "AVAILABLE",
  /** The node's operator refused it: it never leaves the node. */
  REJECTED = "REJECTED",
  /** Deleted from the orchestrator's store after its retention. */
  EXPIRED = "EXPIRED",
  /** Refused by the node (symbolic link, path leaving the sandbox, over a cap) or lost; `reason` says why. */
  FAILED = "FAILED",
}

/** The node's release policy for the run's outputs, as the node reported it. */
export enum ReleasePolicy {
  AUTO = "AUTO",
  REVIEW = "REVIEW",
  LOCAL = "LOCAL",
}

export enum ArtifactDecision {
  APPROVE = "APPROVE",
  REJECT = "REJECT",
}

registerEnumType(ArtifactState, { name: "ArtifactState", description: "Where an output file stands on its way off the node." });
registerEnumType(ReleasePolicy, { name: "ReleasePolicy", description: "Who releases a node's outputs: AUTO on success, REVIEW by its operator through the API, LOCAL only on the node." });
registerEnumType(ArtifactDecision, { name: "ArtifactDecision" });

/** An output file of a run, as its node's manifest listed it. */
@Entity({ tableName: "artifact" })
@Unique({ properties: ["runId", "path"] })
@ObjectType({ description: "An output file of a run: listed by its node, released per the node's policy." })
export class Artifact {
  @PrimaryKey({ type: "uuid" })
  @Field(() => ID)
  id!: string;

  @ManyToOne("Run", { mapToPk: true, fieldName: "run_id", deleteRule: "cascade" })
  @Index()
  runId!: string;

  /** Denormalised from the run, so deciding checks the operator without a join. */
  @Property({ type: "text" })
  nodeId!: string;

  @Property({ type: "text" })
  @Field(() => String, { description: "Relative to the run's sandbox; for a refused glob, the glob." })
  path!: string;

  @Property({ type: "double", nullable: true })
  @Field(() => Float, { nullable: true })
  sizeBytes: number | null = null;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "Lowercase hex SHA-256 of the content, as the node computed it." })
  sha256: string | null = null;

  @Property({ type: "text" })
  @Field(() => ArtifactState)
  state!: ArtifactState;

  @Property({ type: "text" })
  @Field(() => ReleasePolicy)
  releasePolicy!: ReleasePolicy;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "Why it FAILED." })
  reason: string | null = null;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "Who released or rejected it: a caller's subject, `node:<id>/<user>` on the node, or `policy:auto`." })
  decidedBy: string | null = null;

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  decidedAt: Date | null = null;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  comment: string | null = null;

  @Property({ type: "datetime" })
  @Field(() => Date)
  createdAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true, description: "When the orchestrator stored the file, checked, and it became AVAILABLE." })
  storedAt: Date | null = null;

  /** When the last chunk of it arrived: the transfer watch asks the node again after a silence. */
  @Property({ type: "datetime", nullable: true })
  lastChunkAt: Date | null = null;

  @Property({ type: "integer", default: 0 })
  @Field(() => Int, { description: "Times the whole file was received and failed its checksum, and asked for again." })
  checksumFailures: number = 0;

  /** Times the node was asked again since the last chunk arrived; each doubles the wait before the next. */
  @Property({ type: "integer", default: 0 })
  transferAsks: number = 0;
}
