import { GraphQLJSON, GraphQLJSONObject } from "graphql-scalars";
import { Field, InputType, Int } from "type-graphql";
import { ConnectionType } from "../graphql/connection.js";
import { ResourcesInput } from "../kernel/index.js";
import { ArgType, Tool } from "./tool.entity.js";

@InputType()
export class ToolArgInput {
  @Field(() => String) id!: string;
  @Field(() => ArgType) type!: ArgType;
  @Field(() => GraphQLJSON, { nullable: true }) default?: unknown;
  @Field(() => Int, { nullable: true }) position?: number | null;
  @Field(() => String, { nullable: true }) prefix?: string | null;
  @Field(() => Boolean, { nullable: true, description: "Default true: prefix and value are two argv items." }) separate?: boolean | null;
  @Field(() => Boolean, { nullable: true }) required?: boolean | null;
  @Field(() => Boolean, { nullable: true, description: "Default false: a STRING value starting with '-' is refused, so it cannot pass for an option of the tool." })
  allowDash?: boolean | null;
}

@InputType()
export class RegisterToolInput {
  @Field(() => String) name!: string;
  @Field(() => String) version!: string;
  @Field(() => String, { description: "Program to run: a path, or a name looked up on the node's PATH." }) executable!: string;
  @Field(() => String, { nullable: true }) image?: string | null;
  @Field(() => String, { nullable: true, description: "Default process." }) launcher?: string | null;
  @Field(() => [ToolArgInput], { nullable: true }) args?: ToolArgInput[] | null;
  @Field(() => GraphQLJSONObject, { nullable: true, description: "The only environment the process gets. A value may reference node-local secrets as `${secret:NAME}` (NAME: A-Z, 0-9, _), which the node's agent substitutes from its own secrets file; only the reference is stored and sent." }) env?: Record<string, unknown> | null;
  @Field(() => Int, { nullable: true }) timeoutSeconds?: number | null;
  @Field(() => [String], { nullable: true }) outputs?: string[] | null;
  @Field(() => String, { nullable: true }) resultFile?: string | null;
  @Field(() => ResourcesInput, { nullable: true, description: "What each run requests of its node by default (placement and limits); a task may override each amount." })
  resources?: ResourcesInput | null;
}

export const ToolConnection = ConnectionType(Tool, "Tool");
