import { Entity, Index, ManyToOne, PrimaryKey, Property, Unique } from "@mikro-orm/core";
import { GraphQLJSON, GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, Int, ObjectType } from "type-graphql";
import { FailureReason, RunState } from "../kernel/index.js";

/**
 * One attempt of one task on one node; carries the state machine, logs and accounting. Its state,
 * attempt and node are written only by the run lifecycle (lifecycle/). Relations name their
 * entities by string so the runs domain imports neither workflows nor nodes.
 */
@Entity({ tableName: "run" })
@Unique({ properties: ["taskId", "nodeId", "attempt"] })
@Index({ properties: ["nodeId", "state"] })
@Index({ name: "run_waiting_idx", expression: "create index run_waiting_idx on run (node_id) where state = 'QUEUED' and dispatched_at is null" })
@Index({ name: "run_active_idx", expression: "create index run_active_idx on run (node_id) where state in ('QUEUED', 'ACCEPTED', 'RUNNING')" })
@ObjectType({ description: "One attempt of one task on one node." })
export class Run {
  @PrimaryKey({ type: "uuid" })
  @Field(() => ID)
  id!: string;

  @ManyToOne("Task", { mapToPk: true, fieldName: "task_id", deleteRule: "cascade" })
  @Index()
  taskId!: string;

  @ManyToOne("Workflow", { mapToPk: true, fieldName: "workflow_id", deleteRule: "cascade" })
  @Index()
  workflowId!: string;

  @ManyToOne("Node", { mapToPk: true, fieldName: "node_id" })
  nodeId!: string;

  @Property({ type: "integer" })
  @Field(() => Int, { description: "1 for the first attempt; the fencing token of every transition." })
  attempt: number = 1;

  @Property({ type: "text" })
  @Field(() => RunState)
  state: RunState = RunState.PENDING;

  @Property({ type: "text", nullable: true })
  @Field(() => FailureReason, { nullable: true })
  failureReason: FailureReason | null = null;

  @Property({ type: "integer", nullable: true })
  @Field(() => Int, { nullable: true })
  exitCode: number | null = null;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "Why the run ended as it did, in words." })
  message: string | null = null;

  @Property({ type: "json" })
  @Field(() => [String], { description: "The exact argv the node executes; argv[0] is the executable." })
  argv: string[] = [];

  /** Exposed through RunResolver, which shows values to ADMIN only. */
  @Property({ type: "json" })
  env: Record<string, string> = {};

  @Property({ type: "integer", nullable: true })
  @Field(() => Int, { nullable: true })
  timeoutSeconds: number | null = null;

  @Property({ type: "datetime" })
  @Field(() => Date)
  createdAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  queuedAt: Date | null = null;

  /** When the scheduler handed the run to its node's queue (null: waiting for a slot). */
  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true, description: "When the run was handed to its node's queue; null while it waits for a free slot." })
  dispatchedAt: Date | null = null;

  /** A retry waits until this time (backoff). */
  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true, description: "A retry is not dispatched before this time (backoff)." })
  notBefore: Date | null = null;

  /** Consecutive heartbeats of its node, sent after its last state change, that did not list this dispatched run. */
  @Property({ type: "integer" })
  unreportedHeartbeats: number = 0;

  /** When the first of those heartbeats arrived (null while the node lists the run). */
  @Property({ type: "datetime", nullable: true })
  unreportedSince: Date | null = null;

  /** When its node's runs queue was seen empty while those heartbeats left the QUEUED run out. */
  @Property({ type: "datetime", nullable: true })
  queueEmptyAt: Date | null = null;

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  acceptedAt: Date | null = null;

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  startedAt: Date | null = null;

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  finishedAt: Date | null = null;

  @Property({ type: "double", nullable: true })
  wallMs: number | null = null;

  @Property({ type: "double", nullable: true })
  cpuUserMs: number | null = null;

  @Property({ type: "double", nullable: true })
  cpuSystemMs: number | null = null;

  @Property({ type: "double", nullable: true })
  peakRssBytes: number | null = null;

  @Property({ type: "double", nullable: true })
  outputBytes: number | null = null;

  /** Bytes of log text stored so far (maintained by ingestion). */
  @Property({ type: "double" })
  logBytes: number = 0;

  /** Log lines stored so far. */
  @Property({ type: "integer" })
  @Field(() => Int)
  logLineCount: number = 0;

  /** Seq of the SYSTEM line saying the log was truncated (FEM_MAX_LOG_BYTES_PER_RUN), once it was. */
  @Property({ type: "integer", nullable: true })
  logTruncatedSeq: number | null = null;

  /** Highest seq of a line dropped past the log cap. */
  @Property({ type: "integer", nullable: true })
  logDroppedToSeq: number | null = null;

  /** Bytes of log text dropped past the log cap. */
  @Property({ type: "double" })
  logDroppedBytes: number = 0;

  @Property({ type: "json", nullable: true })
  @Field(() => GraphQLJSON, { nullable: true, description: "The small JSON result the run wrote, if any." })
  result: unknown = null;
}
