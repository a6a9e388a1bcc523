import { GraphQLJSONObject } from "graphql-scalars";
import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { connection, decodeCursor, LIST_PAGE, pageCost, pageSize } from "../graphql/connection.js";
import { maskedEnv } from "../kernel/index.js";
import { toolDefinition, type ToolDefinition } from "../shared/index.js";
import { Tool, ToolArg } from "./tool.entity.js";
import { RegisterToolInput, ToolConnection } from "./tool.inputs.js";
import { getTool, listTools, registerTool } from "./tool.service.js";

type ToolCursor = { name: string; version: string };
const isToolCursor = (v: unknown): v is ToolCursor =>
  typeof v === "object" && v !== null && typeof (v as ToolCursor).name === "string" && typeof (v as ToolCursor).version === "string";

@Resolver(() => Tool)
export class ToolResolver {
  @Query(() => Tool, { description: "A tool by id or by `name@version`." })
  async tool(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Tool> {
    return getTool(ctx.orm.em.fork(), id);
  }

  @Query(() => ToolConnection, { complexity: pageCost(LIST_PAGE) })
  async tools(
    @Ctx() ctx: Context,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
    @Arg("after", () => String, { nullable: true }) after?: string | null,
  ) {
    const { tools, hasNextPage } = await listTools(ctx.orm.em.fork(), pageSize(first, LIST_PAGE), decodeCursor(after, isToolCursor));
    return connection(tools, hasNextPage, (t) => ({ name: t.name, version: t.version }));
  }

  @Mutation(() => Tool, { description: "Registers an immutable tool version; CONFLICT if name@version exists." })
  async registerTool(@Arg("input", () => RegisterToolInput) input: RegisterToolInput, @Ctx() ctx: Context): Promise<Tool> {
    return registerTool(ctx.orm.em.fork(), input);
  }

  @FieldResolver(() => GraphQLJSONObject, { description: "Environment every run of the tool gets; values are shown to ADMIN only, others see the names." })
  env(@Root() tool: Tool, @Ctx() ctx: Context): Record<string, string> {
    return maskedEnv(tool.env, ctx.viewer());
  }

  @FieldResolver(() => String, {
    description: "`sha256:` and the hex SHA-256 of the tool's canonical definition (executable, command template, env names, launcher, image, result file, outputs): what a node pins.",
  })
  digest(@Root() tool: Tool): string {
    return tool.contentDigest;
  }

  @FieldResolver(() => GraphQLJSONObject, {
    description:
      "The canonical definition the digest covers: executable, argument template, env names (`envKeys`), env values that reference node secrets (`secretEnv`, the `${secret:NAME}` text, never a value), launcher, image, result file, outputs. `fem-agent policy add` recomputes the digest from it.",
  })
  definition(@Root() tool: Tool): ToolDefinition {
    return toolDefinition(tool);
  }
}

/** Tools registered before `allowDash` existed store no such key: false, as for a new tool that omits it. */
@Resolver(() => ToolArg)
export class ToolArgResolver {
  @FieldResolver(() => Boolean)
  allowDash(@Root() arg: ToolArg): boolean {
    return arg.allowDash ?? false;
  }
}
