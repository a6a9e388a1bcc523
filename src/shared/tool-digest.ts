/**
 * A tool's definition (what decides what a run of it executes) and its content digest, computed
 * the same way by the orchestrator when it registers a tool and by the agent before it runs one.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "./canonical-json.js";
import { secretEnvOf } from "./secret-refs.js";

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

/**
 * What a tool's digest covers: env names, and the values only of those that reference node secrets
 * (`${secret:NAME}`), so that a node that pins a tool also pins which variable gets which secret.
 * Other values are not part of the digest.
 */
export interface ToolDefinition {
  executable: string;
  launcher: string;
  image: string | null;
  args: ToolArgDefinition[];
  envKeys: string[];
  /** Env values that reference secrets, by name; absent when there are none (so older digests stay as they were). */
  secretEnv?: Record<string, string>;
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
  secretEnv?: Readonly<Record<string, string>> | null;
  resultFile?: string | null;
  outputs?: readonly string[] | null;
}

/** The definition of `tool` with every default filled in and env names sorted; argument order is kept (it decides argv). */
export function toolDefinition(tool: ToolDefinitionSource): ToolDefinition {
  const secretEnv = tool.secretEnv ?? secretEnvOf(tool.env ?? {});
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
    ...(Object.keys(secretEnv).length > 0 ? { secretEnv: { ...secretEnv } } : {}),
    resultFile: tool.resultFile ?? null,
    outputs: [...(tool.outputs ?? [])],
  };
}

/** `sha256:<hex>` of the canonical JSON of the normalised definition; stable under key order, blind to env values other than secret references. */
export function toolDigest(tool: ToolDefinitionSource): string {
  return `sha256:${createHash("sha256").update(canonicalJson(toolDefinition(tool)), "utf8").digest("hex")}`;
}
