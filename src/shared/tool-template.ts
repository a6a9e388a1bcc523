/**
 * Whether an argv is one that a tool's command template gives for some parameters: the agent's
 * check that the orchestrator's argv follows the definition it pinned.
 */
import type { ToolArgDefinition, ToolDefinition } from "./tool-digest.js";

/** Whether `text` is how a value of `arg`'s type is written on the command line (as `String(value)`). */
function isValueText(arg: ToolArgDefinition, text: string): boolean {
  switch (arg.type) {
    case "STRING":
      // A submitted value may not start with '-' unless allowed; the tool's own default is trusted.
      return arg.allowDash || !text.startsWith("-") || (arg.default !== null && text === String(arg.default));
    case "INT":
      return /^-?\d+$/.test(text) && Number.isSafeInteger(Number(text)) && String(Number(text)) === text;
    case "FLOAT":
      return text.trim() !== "" && Number.isFinite(Number(text)) && String(Number(text)) === text;
    case "BOOLEAN":
      return text === "true" || text === "false";
  }
}

/** How many argv items `arg` can take from `argv[at]`: the options (0 when it may be absent). */
function matches(arg: ToolArgDefinition, argv: readonly string[], at: number): number[] {
  const takes: number[] = [];
  // Present whenever it has a default or is required; a BOOLEAN flag that is false renders nothing.
  const mayBeAbsent = (arg.default === null && !arg.required) || (arg.type === "BOOLEAN" && arg.prefix !== null);
  if (mayBeAbsent) takes.push(0);
  const item = argv[at];
  if (item === undefined) return takes;
  if (arg.type === "BOOLEAN" && arg.prefix !== null) {
    if (item === arg.prefix) takes.push(1);
  } else if (arg.prefix === null) {
    if (isValueText(arg, item)) takes.push(1);
  } else if (arg.separate) {
    const value = argv[at + 1];
    if (item === arg.prefix && value !== undefined && isValueText(arg, value)) takes.push(2);
  } else if (item.startsWith(arg.prefix) && isValueText(arg, item.slice(arg.prefix.length))) {
    takes.push(1);
  }
  return takes;
}

/** The template's arguments in argv order: by position, unpositioned ones after, in declaration order. */
export function inArgvOrder(args: readonly ToolArgDefinition[]): ToolArgDefinition[] {
  return args
    .map((arg, index) => ({ arg, index }))
    .sort((a, b) => (a.arg.position ?? Number.MAX_SAFE_INTEGER) - (b.arg.position ?? Number.MAX_SAFE_INTEGER) || a.index - b.index)
    .map(({ arg }) => arg);
}

/**
 * Null when `argv` is `[executable, ...]` followed by exactly what the template renders for some
 * parameters (order, prefixes, joined or separate values, value types, required arguments, the
 * '-' rule); otherwise what is wrong. Values themselves are not compared: they are the submitter's.
 */
export function argvTemplateProblem(definition: ToolDefinition, argv: readonly string[]): string | null {
  if (argv[0] !== definition.executable) return `argv[0] is ${JSON.stringify(argv[0] ?? "")}, not the tool's executable ${JSON.stringify(definition.executable)}`;
  const args = inArgvOrder(definition.args);
  // Memo of (argument, argv index) pairs known not to lead to a match: linear in args × argv.
  const dead = new Set<number>();
  const width = argv.length + 1;
  const fits = (i: number, at: number): boolean => {
    if (i === args.length) return at === argv.length;
    const key = i * width + at;
    if (dead.has(key)) return false;
    if (matches(args[i], argv, at).some((n) => fits(i + 1, at + n))) return true;
    dead.add(key);
    return false;
  };
  return fits(0, 1) ? null : "argv does not follow the tool's command template (order, prefixes, value types or required arguments)";
}
