import { Entity, PrimaryKey, Property, Unique } from "@mikro-orm/core";
import { GraphQLJSON, GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, Int, ObjectType, registerEnumType } from "type-graphql";
import { ResourceAmounts, type ResourceRequest } from "../kernel/index.js";
import { toolDigest } from "../shared/index.js";

export enum ArgType {
  STRING = "STRING",
  INT = "INT",
  FLOAT = "FLOAT",
  BOOLEAN = "BOOLEAN",
}
registerEnumType(ArgType, { name: "ArgType" });

/** One typed argument of a tool's command template. */
@ObjectType()
export class ToolArg {
  @Field(() => String) id!: string;
  @Field(() => ArgType) type!: ArgType;
  @Field(() => GraphQLJSON, { nullable: true }) default!: string | number | boolean | null;
  @Field(() => Int, { nullable: true, description: "Order on the command line; unpositioned args follow in declaration order." })
  position!: number | null;
  @Field(() => String, { nullable: true, description: "e.g. `--count`; for BOOLEAN args the flag itself." })
  prefix!: string | null;
  @Field(() => Boolean, { description: "Prefix and value as two argv items (true) or joined (false)." })
  separate!: boolean;
  @Field(() => Boolean) required!: boolean;
  @Field(() => Boolean, { description: "A STRING value given at submission may start with '-' (otherwise refused, so a value cannot become an option)." })
  allowDash!: boolean;
}

/** A versioned, immutable recipe of what to run. */
@Entity({ tableName: "tool" })
@Unique({ properties: ["name", "version"] })
@ObjectType({ description: "A versioned, immutable recipe: executable, typed command template, environment, limits." })
export class Tool {
  @PrimaryKey({ type: "uuid" })
  @Field(() => ID)
  id!: string;

  @Property({ type: "text" })
  @Field(() => String)
  name!: string;

  @Property({ type: "text" })
  @Field(() => String)
  version!: string;

  @Property({ type: "text" })
  @Field(() => String)
  executable!: string;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  image: string | null = null;

  @Property({ type: "text" })
  @Field(() => String)
  launcher: string = "process";

  @Property({ type: "json" })
  @Field(() => [ToolArg])
  args: ToolArg[] = [];

  /** Exposed through ToolResolver, which shows values to ADMIN only. */
  @Property({ type: "json" })
  env: Record<string, string> = {};

  @Property({ type: "integer", nullable: true })
  @Field(() => Int, { nullable: true })
  timeoutSeconds: number | null = null;

  /** Not part of the digest: placement and limits, which the dispatch carries signed. */
  @Property({ type: "json" })
  @Field(() => ResourceAmounts, { description: "What each run requests of its node by default; a task may override each amount." })
  resources: ResourceRequest = {};

  @Property({ type: "json" })
  @Field(() => [String], { description: "Output globs that may be released." })
  outputs: string[] = [];

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true, description: "Sandbox-relative JSON file a run may write as its result." })
  resultFile: string | null = null;

  @Property({ type: "datetime" })
  @Field(() => Date)
  createdAt: Date = new Date();

  /** Set at registration; null for tools registered before digests existed (see `contentDigest`). */
  @Property({ type: "text", nullable: true })
  digest: string | null = null;

  @Field(() => String, { description: "`name@version`" })
  get ref(): string {
    return `${this.name}@${this.version}`;
  }

  /** The stored digest, or for an older tool the one its definition gives. */
  get contentDigest(): string {
    return this.digest ?? toolDigest(this);
  }
}
