/**
 * A tool's definition (what decides what a run of it executes) and its content digest, computed
 * the same way by the orchestrator when it registers a tool and by the agent before it runs one.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "./canonical-json.js";

/** `sha256:` and 64 lowercase hex digits. */
export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

export type ToolArgTypeName = "STRING" | "INT" | "FLOAT" | "BOOLEAN";

/** One argument of the command template, every field explicit. */
export interface ToolArgDefinition {
  id: string;
  type: ToolArgTypeName;
  default: string | number | boolean | null;
  position: number | null;
  prefix: string | null;
  separate: boolean;
  required: boolean;
  allowDash: boolean;
}

/** What a tool's digest covers: env names only (values may differ between sites and are not part of what runs). */
export interface ToolDefinition {
  executable: string;
  launcher: string;
  image: string | null;
  args: ToolArgDefinition[];
  envKeys: string[];
  resultFile: string | null;
  outputs: string[];
}

/** A tool as stored or as received: optional fields default as at registration (`allowDash` was added later). */
export interface ToolDefinitionSource {
  executable: string;
  launcher?: string | null;
  image?: string | null;
  args?: readonly (Partial<ToolArgDefinition> & { id: string; type: ToolArgTypeName })[] | null;
  env?: Readonly<Record<string, unknown>> | null;
  envKeys?: readonly string[] | null;
  resultFile?: string | null;
  outputs?: readonly string[] | null;
}

/** The definition of `tool` with every default filled in and env names sorted; argument order is kept (it decides argv). */
export function toolDefinition(tool: ToolDefinitionSource): ToolDefinition {
  return {
    executable: tool.executable,
    launcher: tool.launcher ?? "process",
    image: tool.image ?? null,
    args: (tool.args ?? []).map((a) => ({
      id: a.id,
      type: a.type,
      default: a.default ?? null,
      position: a.position ?? null,
      prefix: a.prefix ?? null,
      separate: a.separate ?? true,
      required: a.required ?? false,
      allowDash: a.allowDash ?? false,
    })),
    envKeys: [...(tool.envKeys ?? Object.keys(tool.env ?? {}))].sort(),
    resultFile: tool.resultFile ?? null,
    outputs: [...(tool.outputs ?? [])],
  };
}

/** `sha256:<hex>` of the canonical JSON of the normalised definition; stable under key order, blind to env values. */
export function toolDigest(tool: ToolDefinitionSource): string {
  return `sha256:${createHash("sha256").update(canonicalJson(toolDefinition(tool)), "utf8").digest("hex")}`;
}
