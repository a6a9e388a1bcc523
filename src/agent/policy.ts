/**
 * The node's policy (`FEM_POLICY_FILE`, YAML or JSON): which tools, by name[@version] and content
 * digest, this node runs, which datasets it holds and who releases its outputs; and the checks a
 * dispatch's tool passes before it is accepted.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { DATASET_NAME_PATTERN, MAX_DATASETS, OUTPUTS_POLICIES, type OutputsPolicy, type RunDispatch } from "../messaging/contracts.js";
import { argvTemplateProblem, DIGEST_PATTERN, referencesSecrets, toolDigest, type ToolDefinition } from "../shared/index.js";

export interface PinnedTool {
  name: string;
  /** Absent: any version whose digest is pinned. */
  version: string | null;
  digests: string[];
}

/** A dataset the node holds: tasks ask for it by name; only the agent knows its path. */
export interface NodeDataset {
  name: string;
  /** Absolute path on the node (a directory or a file). */
  path: string;
  description: string | null;
  labels: Record<string, string>;
}

/**
 * `allowAny` runs every tool (its definition is still checked); otherwise only `tools`. `datasets`
 * are the node's, by name. `outputs` says who releases the files a run leaves (see `OUTPUTS_POLICIES`).
 */
export interface ToolPolicy {
  allowAny: boolean;
  tools: PinnedTool[];
  datasets: NodeDataset[];
  outputs: OutputsPolicy;
  /** `system-only`: runs' stdout and stderr stay on the node, listed with their outputs; only SYSTEM lines stream. */
  logs: LogsPolicy;
}

export const LOGS_POLICIES = ["stream", "system-only"] as const;
export type LogsPolicy = (typeof LOGS_POLICIES)[number];

/**
 * Who releases outputs when the policy file does not say, or there is none: the node's operator,
 * through the API. A hospital must opt in to `auto`.
 */
export const DEFAULT_OUTPUTS_POLICY: OutputsPolicy = "review";

const digest = z.string().regex(DIGEST_PATTERN, { error: (issue) => `"${String(issue.input)}" is not sha256: and 64 lowercase hex digits` });

const policySchema = z.strictObject({
  allow: z.literal("any", { error: () => `allow may only be "any"` }).optional(),
  outputs: z.enum(OUTPUTS_POLICIES, { error: () => `outputs may only be ${OUTPUTS_POLICIES.join(", ")}` }).optional(),
  logs: z.enum(LOGS_POLICIES, { error: () => `logs may only be ${LOGS_POLICIES.join(", ")}` }).optional(),
  tools: z
    .array(
      z
        .strictObject({
          name: z.string().min(1),
          version: z.string().min(1).optional(),
          digest: digest.optional(),
          digests: z.array(digest).min(1).optional(),
        })
        .refine((t) => t.digest !== undefined || t.digests !== undefined, { error: "names no digest (digest or digests)" }),
    )
    .default([]),
  datasets: z
    .record(
      z.string(),
      z.strictObject({
        path: z
          .string()
          .refine((p) => path.isAbsolute(p), { error: (issue) => `path "${String(issue.input)}" is not absolute` })
          // Every sandbox run sees /usr: a dataset there would be readable by runs that did not ask for it.
          .refine((p) => !isUnder(path.resolve(p), "/usr"), { error: (issue) => `path "${String(issue.input)}" is under /usr, which every sandbox run sees` }),
        description: z.string().max(1_000).optional(),
        labels: z.record(z.string().max(100), z.string().max(1_000)).optional(),
      }),
    )
    .refine((datasets) => Object.keys(datasets).length <= MAX_DATASETS, `at most ${MAX_DATASETS} datasets`)
    .default({}),
});

/** Dataset names that are not DATASET_NAME_PATTERN (checked apart: a record's key schema says only "Invalid key in record"). */
function datasetNameProblems(content: unknown): string[] {
  const datasets = (content as { datasets?: unknown } | null)?.datasets;
  if (datasets === null || typeof datasets !== "object") return [];
  return Object.keys(datasets)
    .filter((name) => !DATASET_NAME_PATTERN.test(name))
    .map((name) => `datasets.${name}: dataset name "${name}" must match ${DATASET_NAME_PATTERN}`);
}

function isUnder(file: string, dir: string): boolean {
  return file === dir || file.startsWith(`${dir}/`);
}

/** Parses a policy document; every problem is listed, each with its place in the file. */
export function parsePolicy(content: unknown): { ok: true; policy: ToolPolicy } | { ok: false; problems: string[] } {
  const parsed = policySchema.safeParse(content);
  const problems = [...(parsed.error?.issues.map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`) ?? []), ...datasetNameProblems(content)];
  if (!parsed.success || problems.length > 0) return { ok: false, problems };
  const tools = parsed.data.tools.map((t) => ({ name: t.name, version: t.version ?? null, digests: [...(t.digest ? [t.digest] : []), ...(t.digests ?? [])] }));
  const datasets = Object.entries(parsed.data.datasets).map(([name, d]) => ({ name, path: path.resolve(d.path), description: d.description ?? null, labels: d.labels ?? {} }));
  return {
    ok: true,
    policy: { allowAny: parsed.data.allow === "any", tools, datasets, outputs: parsed.data.outputs ?? DEFAULT_OUTPUTS_POLICY, logs: parsed.data.logs ?? "stream" },
  };
}

/** The content of a policy document (YAML, or JSON which YAML reads too); throws naming the first syntax error. */
export function parsePolicyText(text: string, file: string): unknown {
  const doc = parseDocument(text, { prettyErrors: false });
  const [syntax] = doc.errors;
  if (syntax) throw new Error(`FEM_POLICY_FILE ${file} cannot be parsed as YAML or JSON: ${syntax.message}`);
  return doc.toJS() ?? {};
}

/**
 * Reads and parses the policy file (YAML or JSON) and checks that every dataset's path exists.
 * Throws an Error listing every problem.
 */
export async function readPolicy(file: string): Promise<ToolPolicy> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(`FEM_POLICY_FILE ${file} cannot be read`, { cause: err });
  }
  const parsed = parsePolicy(parsePolicyText(text, file));
  if (!parsed.ok) throw new Error(`FEM_POLICY_FILE ${file} is invalid: ${parsed.problems.join("; ")}`);
  const missing = await missingDatasetPaths(parsed.policy.datasets);
  if (missing.length > 0) throw new Error(`FEM_POLICY_FILE ${file} is invalid: ${missing.join("; ")}`);
  return parsed.policy;
}

/**
 * Null when the dispatch's tool definition gives the digest it carries; otherwise why not. A
 * dispatch without them passes here (one queued before digests existed): only a policy requires them.
 */
export function digestProblem(dispatch: RunDispatch): string | null {
  const { digest, definition } = dispatch.tool;
  if (!digest || !definition) return null;
  const actual = toolDigest(definition);
  return actual === digest ? null : `tool definition does not match its digest ${digest} (it gives ${actual})`;
}

/** Where the dispatch departs from its tool's definition, or null. */
function dispatchDisagreement(definition: ToolDefinition, dispatch: RunDispatch): string | null {
  if (dispatch.launcher !== definition.launcher) return `launcher ${dispatch.launcher} is not the tool's ${definition.launcher}`;
  if (dispatch.image !== definition.image) return "image is not the tool's";
  if (dispatch.resultFile !== definition.resultFile) return "resultFile is not the tool's";
  if (JSON.stringify(dispatch.outputs) !== JSON.stringify(definition.outputs)) return "outputs are not the tool's";
  const envKeys = Object.keys(dispatch.env).sort();
  if (JSON.stringify(envKeys) !== JSON.stringify(definition.envKeys)) return "environment names are not the tool's";
  const secretEnv = definition.secretEnv ?? {};
  for (const [key, value] of Object.entries(dispatch.env)) {
    const pinned = Object.prototype.hasOwnProperty.call(secretEnv, key) ? secretEnv[key] : undefined;
    if (referencesSecrets(value) ? value !== pinned : pinned !== undefined) return `env ${key} does not reference the secrets the tool's definition gives it`;
  }
  return argvTemplateProblem(definition, dispatch.argv);
}

/**
 * Null when `policy` runs the dispatch's tool and the dispatch follows the tool's definition
 * (launcher, image, result file, outputs, env names, argv per the template); otherwise why not,
 * naming the tool and its digest. Call after `digestProblem`.
 */
export function policyProblem(policy: ToolPolicy, dispatch: RunDispatch): string | null {
  const { name, version, digest, definition } = dispatch.tool;
  const ref = `${name}@${version}`;
  if (!digest || !definition) return `tool ${ref} comes without a digest and definition, and this node pins tools (FEM_POLICY_FILE)`;
  const pinned = policy.allowAny || policy.tools.some((t) => t.name === name && (t.version === null || t.version === version) && t.digests.includes(digest));
  if (!pinned) return `tool ${ref} with digest ${digest} is not pinned on this node (FEM_POLICY_FILE)`;
  const disagreement = dispatchDisagreement(definition, dispatch);
  return disagreement === null ? null : `tool ${ref} (${digest}): ${disagreement}`;
}

/** One problem per dataset whose path cannot be found (or is neither a directory nor a file). */
async function missingDatasetPaths(datasets: readonly NodeDataset[]): Promise<string[]> {
  const problems: string[] = [];
  for (const d of datasets) {
    const found = await stat(d.path).catch(() => null);
    if (found === null) problems.push(`datasets.${d.name}: path ${d.path} does not exist`);
    else if (!found.isDirectory() && !found.isFile()) problems.push(`datasets.${d.name}: path ${d.path} is neither a directory nor a file`);
  }
  return problems;
}
