/**
 * Builds a run's argv from a tool's typed command template and the task's parameters. Never a
 * shell string: each value is one argv item, however it is spelled.
 */
import { BadInputError } from "../kernel/index.js";
import { ArgType, type ToolArg } from "./tool.entity.js";

export type ParamValue = string | number | boolean | null;

/** Checks one value against an argument's type; returns the problem or null. */
export function typeProblem(type: ArgType, value: unknown): string | null {
  switch (type) {
    case ArgType.STRING:
      return typeof value === "string" ? null : `expects a string, got ${describe(value)}`;
    case ArgType.INT:
      return typeof value === "number" && Number.isSafeInteger(value) ? null : `expects an integer, got ${describe(value)}`;
    case ArgType.FLOAT:
      return typeof value === "number" && Number.isFinite(value) ? null : `expects a number, got ${describe(value)}`;
    case ArgType.BOOLEAN:
      return typeof value === "boolean" ? null : `expects a boolean, got ${describe(value)}`;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * argv = [executable, ...arguments in template order]. Throws BadInputError naming the argument
 * (`facts.argument`) for unknown, missing or mistyped parameters.
 * @param where prefix of the error's field, e.g. `tasks[0].params`
 */
export function buildArgv(executable: string, args: ToolArg[], params: Record<string, unknown>, where: string): string[] {
  const known = new Set(args.map((a) => a.id));
  for (const key of Object.keys(params)) {
    if (!known.has(key)) {
      throw BadInputError.field(`${where}.${key}`, `unknown argument ${JSON.stringify(key)}; the tool takes ${[...known].join(", ") || "no arguments"}`, { argument: key });
    }
  }
  const ordered = args
    .map((arg, index) => ({ arg, index }))
    .sort((a, b) => (a.arg.position ?? Number.MAX_SAFE_INTEGER) - (b.arg.position ?? Number.MAX_SAFE_INTEGER) || a.index - b.index);
  const argv = [executable];
  for (const { arg } of ordered) {
    const given = Object.prototype.hasOwnProperty.call(params, arg.id) ? params[arg.id] : undefined;
    const value = given === undefined || given === null ? arg.default : given;
    if (value === undefined || value === null) {
      if (arg.required) throw BadInputError.field(`${where}.${arg.id}`, `missing required argument ${JSON.stringify(arg.id)}`, { argument: arg.id });
      continue;
    }
    const problem = typeProblem(arg.type, value);
    if (problem) throw BadInputError.field(`${where}.${arg.id}`, `argument ${JSON.stringify(arg.id)} ${problem}`, { argument: arg.id });
    argv.push(...renderArg(arg, value as Exclude<ParamValue, null>));
  }
  return argv;
}

function renderArg(arg: ToolArg, value: string | number | boolean): string[] {
  if (arg.type === ArgType.BOOLEAN && arg.prefix) return value ? [arg.prefix] : [];
  const text = String(value);
  if (!arg.prefix) return [text];
  return arg.separate ? [arg.prefix, text] : [`${arg.prefix}${text}`];
}
