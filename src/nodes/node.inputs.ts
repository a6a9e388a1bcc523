import { GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, InputType, Int, ObjectType } from "type-graphql";
import { ConnectionType } from "../graphql/connection.js";
import { ResourcesInput } from "../kernel/index.js";
import { Connectivity, Node, NodeAdminState } from "./node.entity.js";

@InputType()
export class RegisterNodeInput {
  @Field(() => ID, { description: "Slug: 2-63 lowercase letters, digits and '-'." }) id!: string;
  @Field(() => String, { nullable: true }) name?: string | null;
  @Field(() => GraphQLJSONObject, { nullable: true }) labels?: Record<string, unknown> | null;
  @Field(() => Int, { nullable: true, description: "Most runs at once. Default 2 (as fem-agent's FEM_CAPACITY)." }) capacity?: number | null;
  @Field(() => [String], { nullable: true, description: "Default [\"process\"]." }) launchers?: string[] | null;
  @Field(() => [String], { nullable: true, description: "Tools (name or name@version) the node accepts; empty = any." }) allowedTools?: string[] | null;
  @Field(() => ResourcesInput, {
    nullable: true,
    description: "What the node offers runs in total. Each amount given takes precedence over what the agent reports in its heartbeats (cpus, memory, GPUs, free disk), which fills the others.",
  })
  resources?: ResourcesInput | null;
}

@InputType()
export class NodeFilter {
  @Field(() => NodeAdminState, { nullable: true }) adminState?: NodeAdminState | null;
  @Field(() => Connectivity, { nullable: true }) connectivity?: Connectivity | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: "Nodes carrying all of these labels." }) labels?: Record<string, unknown> | null;
  @Field(() => Boolean, { nullable: true, description: "Also list removed nodes (removedAt set). Default false." }) includeRemoved?: boolean | null;
}

@ObjectType()
export class NodeRegistration {
  @Field(() => Node) node!: Node;
  @Field(() => String, { description: "The password of the node's own broker user (FEM_NODE_CREDENTIAL_FILE on the agent); shown once, stored only as a hash." }) credential!: string;
}

export const NodeConnection = ConnectionType(Node, "Node");
