import { Entity, ManyToOne, PrimaryKey, Property } from "@mikro-orm/core";
import { Node } from "./node.entity.js";

/** A user operating a node: sees the runs on it, drains or disables it. */
@Entity({ tableName: "node_operator" })
export class NodeOperator {
  @ManyToOne(() => Node, { primary: true, mapToPk: true, fieldName: "node_id", deleteRule: "cascade" })
  nodeId!: string;

  @PrimaryKey({ type: "text" })
  subject!: string;

  @Property({ type: "datetime" })
  grantedAt: Date = new Date();
}
