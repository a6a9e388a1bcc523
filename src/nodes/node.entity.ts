import { Entity, Enum, PrimaryKey, Property } from "@mikro-orm/core";
import { GraphQLJSONObject } from "graphql-scalars";
import { Field, Float, ID, Int, ObjectType, registerEnumType } from "type-graphql";
import { ResourceAmounts, type ResourceAmountsData } from "../kernel/index.js";

export enum NodeAdminState {
  ACTIVE = "ACTIVE",
  DRAINING = "DRAINING",
  DISABLED = "DISABLED",
}

export enum Connectivity {
  ONLINE = "ONLINE",
  OFFLINE = "OFFLINE",
}

registerEnumType(NodeAdminState, { name: "NodeAdminState" });
registerEnumType(Connectivity, { name: "Connectivity" });

@ObjectType({ description: "Last health report an agent sent with its heartbeat." })
export class NodeHealth {
  @Field(() => Int) cpus!: number;
  @Field(() => Float) loadAvg1!: number;
  @Field(() => Float) memoryTotalBytes!: number;
  @Field(() => Float) memoryFreeBytes!: number;
  @Field(() => Float, { nullable: true }) diskFreeBytes!: number | null;
  @Field(() => Int) gpus!: number;
  @Field(() => String) agentVersion!: string;
}

@ObjectType({ description: "What a launcher isolates a run from, as the node's agent reports it." })
export class LauncherIsolation {
  @Field(() => String, { description: "none: only a private loopback inside the run; host: the node's network." }) network!: string;
  @Field(() => String, { description: "private: only the run's directory and read-only system files (/usr and the tool, or the container image) are visible; shared: what the agent's user sees." })
  filesystem!: string;
  @Field(() => Boolean, { description: "The run sees only its own processes and cannot leave them (setsid)." }) pidNamespace!: boolean;
  @Field(() => Boolean, { description: "The run executes under a uid other than the agent's." }) separateUser!: boolean;
  @Field(() => Boolean, { description: "The run dies with the agent process." }) killedWithAgent!: boolean;
  @Field(() => [String], { description: "Limits the launcher enforces: memory, pids, disk, cpuTime, cpus (a CPU quota)." }) limits!: string[];
}

@ObjectType({ description: "A launcher a node's agent offers." })
export class NodeLauncher {
  @Field(() => String) name!: string;
  @Field(() => LauncherIsolation, { nullable: true, description: "Null when the agent reports names only (older agents)." })
  isolation!: LauncherIsolation | null;
}

@ObjectType({ description: "A dataset a node holds, as its agent reports it: tasks name it in datasets. Its path stays on the node." })
export class NodeDataset {
  @Field(() => String) name!: string;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field(() => GraphQLJSONObject) labels!: Record<string, string>;
}

/** One Federated Data Node. */
@Entity({ tableName: "node" })
@ObjectType({ description: "A Federated Data Node: a site whose data never leaves it." })
export class Node {
  @PrimaryKey({ type: "text" })
  @Field(() => ID)
  id!: string;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  name: string | null = null;

  @Property({ type: "json" })
  @Field(() => GraphQLJSONObject)
  labels: Record<string, string> = {};

  @Property({ type: "integer" })
  @Field(() => Int, { description: "Most runs the node executes at once." })
  capacity: number = 2;

  @Property({ type: "json" })
  @Field(() => ResourceAmounts, { description: "Totals registered for the node; each takes precedence over what its agent reports (see resourceTotals)." })
  registeredResources: ResourceAmountsData = {};

  @Property({ type: "json" })
  @Field(() => [String], { description: "Launchers registered for the node: a task's tool must name one of them." })
  launchers: string[] = ["process"];

  @Property({ type: "json", defaultRaw: "'[]'" })
  @Field(() => [NodeLauncher], { description: "Launchers the node's agent reported in its last heartbeat, with their isolation; empty until it sent one." })
  reportedLaunchers: NodeLauncher[] = [];

  @Property({ type: "json" })
  @Field(() => [NodeDataset], { description: "Datasets the node's agent reported in its last heartbeat (its policy file names them); empty until it sent one." })
  datasets: NodeDataset[] = [];

  @Property({ type: "json" })
  @Field(() => [String], { description: "Tools (name or name@version) the node accepts; empty means any." })
  allowedTools: string[] = [];

  @Enum({ items: () => NodeAdminState, type: "text" })
  @Field(() => NodeAdminState)
  adminState: NodeAdminState = NodeAdminState.ACTIVE;

  @Enum({ items: () => Connectivity, type: "text" })
  @Field(() => Connectivity)
  connectivity: Connectivity = Connectivity.OFFLINE;

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true })
  lastHeartbeatAt: Date | null = null;

  @Property({ type: "json", nullable: true })
  @Field(() => NodeHealth, { nullable: true })
  health: NodeHealth | null = null;

  @Property({ type: "text", hidden: true })
  credentialHash!: string;

  @Property({ type: "datetime", nullable: true })
  @Field(() => Date, { nullable: true, description: "When an administrator removed the node (removeNode); its runs and accounting stay. Null while registered." })
  removedAt: Date | null = null;

  @Property({ type: "datetime" })
  @Field(() => Date)
  createdAt: Date = new Date();

  @Property({ type: "datetime", onUpdate: () => new Date() })
  @Field(() => Date)
  updatedAt: Date = new Date();
}
