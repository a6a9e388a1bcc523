import { Entity, Index, ManyToOne, PrimaryKey, Property, Unique } from "@mikro-orm/core";
import { GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, Int, ObjectType } from "type-graphql";
import { ResourceAmounts, RunState, type ResourceRequest } from "../kernel/index.js";
import { defaultRetryPolicy, RetryPolicy } from "./retry-policy.js";
import { Tool } from "../tools/index.js";
import { TaskInputFiles } from "./task-inputs.js";
import { Workflow } from "./workflow.entity.js";

/**
 * A task as plain data, from SQL rows or an entity: the type of the roots of Task's field
 * resolvers, so that type-graphql hands the root over as it is (for a root typed by the entity
 * class it builds an entity from every plain record, which costs more than reading the row).
 */
export type TaskRecord = Omit<Task, never>;

/** One vertex of a workflow: a tool fanned out over nodes. */
@Entity({ tableName: "task" })
@Unique({ properties: ["workflowId", "key"] })
@ObjectType({ description: "One vertex of a workflow: a tool with parameters, run on one or more nodes." })
export class Task {
  @PrimaryKey({ type: "uuid" })
  @Field(() => ID)
  id!: string;

  @ManyToOne(() => Workflow, { mapToPk: true, fieldName: "workflow_id", deleteRule: "cascade" })
  workflowId!: string;

  @Property({ type: "text" })
  @Field(() => String)
  key!: string;

  @ManyToOne(() => Tool, { mapToPk: true, fieldName: "tool_id" })
  @Index()
  toolId!: string;

  @Property({ type: "json" })
  @Field(() => GraphQLJSONObject)
  params: Record<string, unknown> = {};

  /** Per-node overrides: node id → params. */
  @Property({ type: "json" })
  nodeParams: Record<string, Record<string, unknown>> = {};

  /** Ids of the nodes this task targets (resolved from ids or a label selector at submit time). */
  @Property({ type: "json" })
  nodeIds: string[] = [];

  /** Names of the datasets each of its runs reads on its node. */
  @Property({ type: "json" })
  @Field(() => [String], { description: "Datasets each run reads on its node (mounted read-only at /data/<name> by the sandbox launcher)." })
  datasets: string[] = [];

  /** Artifacts of upstream tasks each of its runs receives before it starts. */
  @Property({ type: "json" })
  @Field(() => [TaskInputFiles], { description: "Artifacts of upstream tasks each run receives, read-only, in inputs/<from>/<node>/ of its sandbox." })
  inputs: TaskInputFiles[] = [];

  /** Ids of tasks of the same workflow this one waits for. */
  @Property({ type: "json" })
  dependsOnIds: string[] = [];

  @Property({ type: "integer" })
  @Field(() => Int)
  priority: number = 0;

  @Property({ type: "integer", nullable: true })
  @Field(() => Int, { nullable: true })
  timeoutSeconds: number | null = null;

  /** The tool's requests with the task's overrides: what each run of the task holds on its node. */
  @Property({ type: "json" })
  @Field(() => ResourceAmounts, { description: "What each run requests of its node: the tool's defaults with the task's overrides." })
  resources: ResourceRequest = {};

  @Property({ type: "json" })
  @Field(() => RetryPolicy)
  retry: RetryPolicy = defaultRetryPolicy();

  /** Runs that must succeed for the task to succeed; null means all. */
  @Property({ type: "integer", nullable: true })
  @Field(() => Int, { nullable: true, description: "Runs that must succeed; null means all of them." })
  minSucceeded: number | null = null;

  @Property({ type: "text" })
  @Field(() => RunState)
  state: RunState = RunState.QUEUED;

  @Property({ type: "datetime" })
  @Field(() => Date)
  createdAt: Date = new Date();

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  finishedAt: Date | null = null;
}
