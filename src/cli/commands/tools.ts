/** `fem tools register tool.yaml` and `fem tools ls`. */
import { allPages, type CommandContext } from "../context.js";
import { readDocument } from "../documents.js";
import { REGISTER_TOOL, TOOLS, type Page, type ToolView } from "../operations.js";
import { table } from "../render.js";

export async function registerTool(ctx: CommandContext, file: string, options: { json?: boolean }): Promise<void> {
  const input = await readDocument(file, "tool");
  const api = await ctx.api();
  const { registerTool: tool } = await api.request<{ registerTool: ToolView }>(REGISTER_TOOL, { input });
  if (options.json) return ctx.out.json(tool);
  ctx.out.line(`registered tool ${tool.ref} (${tool.digest}); nodes whose policy pins tools need this digest`);
}

export async function listTools(ctx: CommandContext, options: { json?: boolean }): Promise<void> {
  const api = await ctx.api();
  const tools = await allPages((after) => api.request<{ tools: Page<ToolView> }>(TOOLS, { first: 500, after }).then((d) => d.tools));
  if (options.json) return ctx.out.json(tools);
  if (tools.length === 0) return ctx.out.line("no tools registered");
  ctx.out.line(
    table(
      ["TOOL", "LAUNCHER", "EXECUTABLE", "TIMEOUT", "DIGEST", "REGISTERED"],
      tools.map((t) => [t.ref, t.launcher, t.executable, t.timeoutSeconds === null ? null : `${t.timeoutSeconds} s`, t.digest.slice(0, 19), t.createdAt.slice(0, 19).replace("T", " ")]),
    ),
  );
}
