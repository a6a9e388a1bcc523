import { GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import { ConnectionType } from "../graphql/connection.js";
import type { WorkflowEventKind } from "../live/live-events.js";
import { ResourcesInput, RunState } from "../kernel/index.js";
import { Run } from "../runs/index.js";
import { RetryPolicyInput } from "./retry-policy.js";
import { TaskInputFilesInput } from "./task-inputs.js";
import { Workflow } from "./workflow.entity.js";

@InputType()
export class NodeParamsInput {
  @Field(() => ID) node!: string;
  @Field(() => GraphQLJSONObject) params!: Record<string, unknown>;
}

@InputType()
export class TaskInput {
  @Field(() => String, { description: "Unique within the workflow; dependsOn refers to it." }) key!: string;
  @Field(() => String, { description: "name@version" }) tool!: string;
  @Field(() => [ID], { nullable: true, description: "Target nodes by id (or use nodeSelector)." }) nodes?: string[] | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: "Target every active node carrying these labels." }) nodeSelector?: Record<string, unknown> | null;
  @Field(() => [String], { nullable: true, description: "Datasets the task reads: it targets only nodes that have every one (Node.datasets)." })
  datasets?: string[] | null;
  @Field(() => [TaskInputFilesInput], { nullable: true, description: "Artifacts of upstream tasks (from: a key in dependsOn) each run receives, read-only, in inputs/<from>/<node>/ of its sandbox." })
  inputs?: TaskInputFilesInput[] | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: "Arguments common to every node." }) params?: Record<string, unknown> | null;
  @Field(() => [NodeParamsInput], { nullable: true, description: "Per-node overrides of params." }) nodeParams?: NodeParamsInput[] | null;
  @Field(() => [String], { nullable: true, description: "Keys of tasks that must succeed first." }) dependsOn?: string[] | null;
  @Field(() => Int, { nullable: true }) priority?: number | null;
  @Field(() => Int, { nullable: true, description: "Overrides the tool's timeout." }) timeoutSeconds?: number | null;
  @Field(() => Int, { nullable: true, description: "Runs that must succeed (k of n); default all." }) minSucceeded?: number | null;
  @Field(() => RetryPolicyInput, { nullable: true, description: "Default: no retry." }) retry?: RetryPolicyInput | null;
  @Field(() => ResourcesInput, { nullable: true, description: "Overrides the tool's resource requests, amount by amount. Each named node must have them in total; a nodeSelector leaves out the nodes that do not." })
  resources?: ResourcesInput | null;
}

@InputType()
export class SubmitWorkflowInput {
  @Field(() => ID, { nullable: true, description: "Project id or name; may be omitted when you may submit to exactly one project." }) project?: string | null;
  @Field(() => String, { nullable: true }) name?: string | null;
  @Field(() => String, { nullable: true, description: "Resubmitting the same content with the same key returns the first workflow." })
  idempotencyKey?: string | null;
  @Field(() => [TaskInput]) tasks!: TaskInput[];
}

@InputType()
export class WorkflowFilter {
  @Field(() => ID, { nullable: true, description: "A project id." }) project?: string | null;
  @Field(() => [RunState], { nullable: true }) states?: RunState[] | null;
  @Field(() => String, { nullable: true }) submittedBy?: string | null;
  @Field(() => Date, { nullable: true }) submittedAfter?: Date | null;
  @Field(() => Date, { nullable: true }) submittedBefore?: Date | null;
}

export const WorkflowConnection = ConnectionType(Workflow, "Workflow");

export const WorkflowEventKindEnum = { WORKFLOW: "WORKFLOW", TASK: "TASK", RUN: "RUN" } as const;
registerEnumType(WorkflowEventKindEnum, { name: "WorkflowEventKind" });

@ObjectType({ description: "A state change of the workflow, one of its tasks or one of its runs." })
export class WorkflowEvent {
  @Field(() => ID) workflowId!: string;
  @Field(() => WorkflowEventKindEnum) kind!: WorkflowEventKind;
  @Field(() => RunState) state!: RunState;
  @Field(() => ID, { nullable: true }) taskId!: string | null;
  @Field(() => ID, { nullable: true }) runId!: string | null;
  @Field(() => Run, { nullable: true }) run!: Run | null;
  @Field(() => Date) at!: Date;
}
