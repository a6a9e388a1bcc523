import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { connection, ConnectionType, decodeCursor, LIST_PAGE, pageCost, pageSize } from "../graphql/connection.js";
import { ProjectRole } from "../kernel/index.js";
import { Project, ProjectMember } from "./project.entity.js";
import { CreateProjectInput } from "./project.inputs.js";
import {
  addProjectMember,
  addProjectNode,
  createProject,
  getProject,
  listProjects,
  removeProjectMember,
  removeProjectNode,
  setProjectMemberRole,
} from "./project.service.js";

const ProjectConnection = ConnectionType(Project, "Project");

@Resolver(() => Project)
export class ProjectResolver {
  @Query(() => Project, { description: "A project by id or name; NOT_FOUND unless you are a member (or ADMIN)." })
  async project(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Project> {
    return getProject(ctx.orm.em.fork(), ctx.viewer(), id);
  }

  @Query(() => ProjectConnection, { description: "The projects you are a member of (every project for ADMIN), by name.", complexity: pageCost(LIST_PAGE) })
  async projects(
    @Ctx() ctx: Context,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
    @Arg("after", () => String, { nullable: true }) after?: string | null,
  ) {
    const cursor = decodeCursor(after, (v): v is string => typeof v === "string");
    const page = await listProjects(ctx.orm.em.fork(), ctx.viewer(), pageSize(first, LIST_PAGE), cursor);
    return connection(page.projects, page.hasNextPage, (p) => p.name);
  }

  @Mutation(() => Project, { description: "Creates a project (ADMIN)." })
  async createProject(@Arg("input", () => CreateProjectInput) input: CreateProjectInput, @Ctx() ctx: Context): Promise<Project> {
    return createProject(ctx.orm.em.fork(), ctx.viewer(), input);
  }

  @Mutation(() => ProjectMember, { description: "Adds a user to a project with a role (the project's OWNER, or ADMIN). CONFLICT when already a member." })
  async addProjectMember(
    @Arg("project", () => ID) project: string,
    @Arg("subject", () => String) subject: string,
    @Arg("role", () => ProjectRole) role: ProjectRole,
    @Ctx() ctx: Context,
  ): Promise<ProjectMember> {
    return addProjectMember(ctx.orm.em.fork(), ctx.viewer(), project, subject, role);
  }

  @Mutation(() => ProjectMember, { description: "Changes a member's role (the project's OWNER, or ADMIN)." })
  async setProjectMemberRole(
    @Arg("project", () => ID) project: string,
    @Arg("subject", () => String) subject: string,
    @Arg("role", () => ProjectRole) role: ProjectRole,
    @Ctx() ctx: Context,
  ): Promise<ProjectMember> {
    return setProjectMemberRole(ctx.orm.em.fork(), ctx.viewer(), project, subject, role);
  }

  @Mutation(() => Project, { description: "Removes a member (the project's OWNER, or ADMIN)." })
  async removeProjectMember(@Arg("project", () => ID) project: string, @Arg("subject", () => String) subject: string, @Ctx() ctx: Context): Promise<Project> {
    return removeProjectMember(ctx.orm.em.fork(), ctx.viewer(), project, subject);
  }

  @Mutation(() => Project, { description: "Adds a registered node to a project (ADMIN): the project's workflows may then run there." })
  async addProjectNode(@Arg("project", () => ID) project: string, @Arg("nodeId", () => ID) nodeId: string, @Ctx() ctx: Context): Promise<Project> {
    return addProjectNode(ctx.orm.em.fork(), ctx.viewer(), project, nodeId);
  }

  @Mutation(() => Project, { description: "Removes a node from a project (ADMIN); runs already dispatched there go on." })
  async removeProjectNode(@Arg("project", () => ID) project: string, @Arg("nodeId", () => ID) nodeId: string, @Ctx() ctx: Context): Promise<Project> {
    return removeProjectNode(ctx.orm.em.fork(), ctx.viewer(), project, nodeId);
  }

  @FieldResolver(() => [ProjectMember])
  async members(@Root() project: Project, @Ctx() ctx: Context): Promise<ProjectMember[]> {
    return ctx.loaders.membersOfProject.load(project.id);
  }

  @FieldResolver(() => [ID], { description: "Ids of the project's nodes." })
  async nodeIds(@Root() project: Project, @Ctx() ctx: Context): Promise<string[]> {
    return ctx.loaders.nodeIdsOfProject.load(project.id);
  }
}
