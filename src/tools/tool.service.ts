/** Registering and reading tools. Framework-free: throws AppErrors only. */
import { randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { UniqueConstraintViolationException } from "@mikro-orm/core";
import { BadInputError, checkText, ConflictError, MAX_VALUE_CHARS, NotFoundError, validateResources, type ResourcesInputData } from "../kernel/index.js";
import { IMAGE_LAUNCHERS, KNOWN_LAUNCHERS } from "../messaging/contracts.js";
import { secretRefProblem, toolDigest } from "../shared/index.js";
import { typeProblem } from "./command.js";
import { ArgType, Tool, type ToolArg } from "./tool.entity.js";

export interface ToolArgData {
  id: string;
  type: ArgType;
  default?: unknown;
  position?: number | null;
  prefix?: string | null;
  separate?: boolean | null;
  required?: boolean | null;
  allowDash?: boolean | null;
}

export interface RegisterToolData {
  name: string;
  version: string;
  executable: string;
  image?: string | null;
  launcher?: string | null;
  args?: ToolArgData[] | null;
  env?: Record<string, unknown> | null;
  timeoutSeconds?: number | null;
  outputs?: string[] | null;
  resultFile?: string | null;
  resources?: ResourcesInputData | null;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,49}$/;
const ARG_ID = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Most arguments, environment variables and output globs of one tool. */
export const MAX_TOOL_ENTRIES = 100;
const MAX_IMAGE_CHARS = 500;

/** A sandbox-relative path: no absolute paths, no `..`, no empty segments. */
export function isSandboxPath(path: string): boolean {
  if (path.length === 0 || path.length > 500 || path.startsWith("/") || path.includes("\0")) return false;
  return path.split("/").every((segment) => segment !== "" && segment !== "." && segment !== "..");
}

function validateArgs(args: ToolArgData[]): ToolArg[] {
  if (args.length > MAX_TOOL_ENTRIES) throw BadInputError.field("args", `at most ${MAX_TOOL_ENTRIES} arguments`);
  const seen = new Set<string>();
  return args.map((a, i) => {
    const field = `args[${i}]`;
    if (!ARG_ID.test(a.id)) throw BadInputError.field(`${field}.id`, `${JSON.stringify(a.id)} is not a valid argument id`);
    if (seen.has(a.id)) throw BadInputError.field(`${field}.id`, `argument ${JSON.stringify(a.id)} is declared twice`, { argument: a.id });
    seen.add(a.id);
    if (a.position != null && (!Number.isInteger(a.position) || a.position < 0)) throw BadInputError.field(`${field}.position`, "must be a non-negative integer");
    const defaultValue = a.default ?? null;
    if (defaultValue !== null) {
      const problem = typeProblem(a.type, defaultValue);
      if (problem) throw BadInputError.field(`${field}.default`, `default of ${JSON.stringify(a.id)} ${problem}`, { argument: a.id });
      if (typeof defaultValue === "string") checkText(`${field}.default`, defaultValue, MAX_VALUE_CHARS);
    }
    if (a.prefix != null && (a.prefix.length === 0 || a.prefix.length > 100)) throw BadInputError.field(`${field}.prefix`, "must be 1-100 characters");
    return {
      id: a.id,
      type: a.type,
      default: defaultValue as string | number | boolean | null,
      position: a.position ?? null,
      prefix: a.prefix ?? null,
      separate: a.separate ?? true,
      required: a.required ?? false,
      allowDash: a.allowDash ?? false,
    };
  });
}

function validateEnv(env: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = Object.entries(env);
  if (entries.length > MAX_TOOL_ENTRIES) throw BadInputError.field("env", `at most ${MAX_TOOL_ENTRIES} variables`);
  for (const [key, value] of entries) {
    if (!ENV_NAME.test(key)) throw BadInputError.field(`env.${key.slice(0, 128)}`, "is not a valid environment variable name (1-128 letters, digits and '_', not starting with a digit)");
    if (typeof value !== "string") throw BadInputError.field(`env.${key}`, "environment values are strings");
    checkText(`env.${key}`, value, MAX_VALUE_CHARS);
    const refProblem = secretRefProblem(value);
    if (refProblem) throw BadInputError.field(`env.${key}`, refProblem);
    out[key] = value;
  }
  return out;
}

export async function registerTool(em: EntityManager, data: RegisterToolData): Promise<Tool> {
  if (!NAME.test(data.name)) throw BadInputError.field("name", "1-100 letters, digits, '.', '_', '-', starting with a letter or digit");
  if (!VERSION.test(data.version)) throw BadInputError.field("version", "1-50 letters, digits, '.', '_', '+', '-', starting with a letter or digit");
  if (data.executable.trim().length === 0 || data.executable.length > 1_000 || data.executable.includes("\0")) {
    throw BadInputError.field("executable", "must name a program (1-1000 characters)");
  }
  const launcher = data.launcher ?? "process";
  if (!(KNOWN_LAUNCHERS as readonly string[]).includes(launcher)) throw BadInputError.field("launcher", `unknown launcher ${JSON.stringify(launcher)}`);
  if (IMAGE_LAUNCHERS.includes(launcher) && !data.image) throw BadInputError.field("image", `the ${launcher} launcher needs an image`);
  if (data.image != null) checkText("image", data.image, MAX_IMAGE_CHARS);
  if (data.timeoutSeconds != null && (!Number.isInteger(data.timeoutSeconds) || data.timeoutSeconds < 1)) throw BadInputError.field("timeoutSeconds", "must be a positive integer");
  if ((data.outputs ?? []).length > MAX_TOOL_ENTRIES) throw BadInputError.field("outputs", `at most ${MAX_TOOL_ENTRIES} output globs`);
  for (const [i, glob] of (data.outputs ?? []).entries()) {
    if (!isSandboxPath(glob)) throw BadInputError.field(`outputs[${i}]`, `${JSON.stringify(glob)} must be a relative path inside the sandbox`);
  }
  if (data.resultFile != null && !isSandboxPath(data.resultFile)) throw BadInputError.field("resultFile", "must be a relative path inside the sandbox");
  const tool = new Tool();
  tool.id = randomUUID();
  tool.name = data.name;
  tool.version = data.version;
  tool.executable = data.executable;
  tool.image = data.image ?? null;
  tool.launcher = launcher;
  tool.args = validateArgs(data.args ?? []);
  tool.env = validateEnv(data.env ?? {});
  tool.timeoutSeconds = data.timeoutSeconds ?? null;
  tool.outputs = data.outputs ?? [];
  tool.resultFile = data.resultFile ?? null;
  tool.resources = validateResources("resources", data.resources);
  tool.digest = toolDigest(tool);
  try {
    await em.persistAndFlush(tool);
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) {
      throw new ConflictError(`tool ${tool.ref} already exists; tools are immutable, register a new version`, { tool: tool.ref });
    }
    throw err;
  }
  return tool;
}

/** Splits `name@version`. */
export function parseToolRef(ref: string): { name: string; version: string } | null {
  const at = ref.lastIndexOf("@");
  if (at <= 0 || at === ref.length - 1) return null;
  return { name: ref.slice(0, at), version: ref.slice(at + 1) };
}

export async function getTool(em: EntityManager, idOrRef: string): Promise<Tool> {
  const ref = parseToolRef(idOrRef);
  const tool = ref
    ? await em.findOne(Tool, { name: ref.name, version: ref.version })
    : /^[0-9a-f-]{36}$/i.test(idOrRef)
      ? await em.findOne(Tool, { id: idOrRef })
      : null;
  if (!tool) throw NotFoundError.entity("Tool", idOrRef);
  return tool;
}

export async function listTools(em: EntityManager, first: number, after: { name: string; version: string } | null): Promise<{ tools: Tool[]; hasNextPage: boolean }> {
  const where = after ? { $or: [{ name: { $gt: after.name } }, { name: after.name, version: { $gt: after.version } }] } : {};
  const tools = await em.find(Tool, where, { orderBy: { name: "asc", version: "asc" }, limit: first + 1 });
  return { tools: tools.slice(0, first), hasNextPage: tools.length > first };
}
