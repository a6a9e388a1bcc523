import { Entity, ManyToOne, PrimaryKey, Property } from "@mikro-orm/core";
import { Field, ID, ObjectType } from "type-graphql";
import { ProjectRole } from "../kernel/index.js";

/** A collaboration: member nodes and member users; every workflow belongs to one. */
@Entity({ tableName: "project" })
@ObjectType({ description: "A collaboration: member nodes and member users. Every workflow belongs to one project and runs only on its nodes." })
export class Project {
  @PrimaryKey({ type: "uuid" })
  @Field(() => ID)
  id!: string;

  @Property({ type: "text", unique: true })
  @Field(() => String, { description: "Slug: 2-63 lowercase letters, digits and '-'." })
  name!: string;

  @Property({ type: "text", nullable: true })
  @Field(() => String, { nullable: true })
  description: string | null = null;

  @Property({ type: "text" })
  @Field(() => String, { description: "Subject of the administrator who created it." })
  createdBy!: string;

  @Property({ type: "datetime" })
  @Field(() => Date)
  createdAt: Date = new Date();
}

/** A user's role in a project; the subject may not have signed in yet. */
@Entity({ tableName: "project_member" })
@ObjectType({ description: "A user's role in a project." })
export class ProjectMember {
  @ManyToOne(() => Project, { primary: true, mapToPk: true, fieldName: "project_id", deleteRule: "cascade" })
  @Field(() => ID)
  projectId!: string;

  @PrimaryKey({ type: "text" })
  @Field(() => String, { description: "The member's subject (OIDC `sub`, or an API token owner)." })
  subject!: string;

  @Property({ type: "text" })
  @Field(() => ProjectRole)
  role!: ProjectRole;

  @Property({ type: "datetime" })
  @Field(() => Date)
  addedAt: Date = new Date();
}

/** A node taking part in a project. */
@Entity({ tableName: "project_node" })
export class ProjectNode {
  @ManyToOne(() => Project, { primary: true, mapToPk: true, fieldName: "project_id", deleteRule: "cascade" })
  projectId!: string;

  @ManyToOne("Node", { primary: true, mapToPk: true, fieldName: "node_id", deleteRule: "cascade" })
  nodeId!: string;

  @Property({ type: "datetime" })
  addedAt: Date = new Date();
}
