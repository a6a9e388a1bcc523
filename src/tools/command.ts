/**
 * Builds a run's argv from a tool's typed command template and the task's parameters. Never a
 * shell string: each value is one argv item, however it is spelled.
 */
import { BadInputError, checkText, MAX_VALUE_CHARS } from "../kernel/index.js";
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

/** A submitted STRING value starting with '-' could be read as an option of the tool; refused unless the argument allows it. */
function checkGiven(arg: ToolArg, value: unknown, field: string): void {
  if (typeof value !== "string") return;
  checkText(field, value, MAX_VALUE_CHARS, { argument: arg.id });
  if (arg.type === ArgType.STRING && value.startsWith("-") && !arg.allowDash) {
    throw BadInputError.field(field, `argument ${JSON.stringify(arg.id)} may not start with '-' (it could be read as an option); the tool would have to declare allowDash`, { argument: arg.id });
  }
}

/**
 * argv = [executable, ...arguments in template order]. Throws BadInputError naming the argument
 * (`facts.argument`) for unknown, missing, mistyped or oversized parameters, and for a STRING value
 * starting with '-' unless its argument has `allowDash` (the tool's own defaults are trusted).
 * @param where prefix of the error's field, e.g. `tasks[0].params`
 */
export function buildArgv(executable: string, args: ToolArg[], params: Record<string, unknown>, where: string): string[] {
  const known = new Set(args.map((a) => a.id));
  for (const key of Object.keys(params)) {
    if (!known.has(key)) {
      if (key.length > 64) throw BadInputError.field(where, `unknown argument ${JSON.stringify(`${key.slice(0, 64)}…`)}`, { argument: key.slice(0, 64) });
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
    if (given !== undefined && given !== null) checkGiven(arg, given, `${where}.${arg.id}`);
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
