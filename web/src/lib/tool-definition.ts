/**
 * A tool definition pasted as JSON or YAML (JSON is YAML too), checked only for its shape: the
 * API validates every field and answers precise messages.
 */
import { parse } from "yaml";

export type ParsedTool = { ok: true; input: Record<string, unknown> } | { ok: false; problem: string };

export function parseToolDefinition(text: string): ParsedTool {
  if (!text.trim()) return { ok: false, problem: "Paste a tool definition (JSON or YAML)." };
  let value: unknown;
  try {
    value = parse(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: 10 });
  } catch (error) {
    return { ok: false, problem: `Not valid JSON or YAML: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, problem: "The definition must be a mapping of fields (name, version, executable, …)." };
  const input = value as Record<string, unknown>;
  // YAML reads `version: 1.0` as a number; the API wants text.
  if (typeof input.version === "number") return { ok: false, problem: "version must be text: quote it (version: \"1.0.0\")." };
  return { ok: true, input };
}
