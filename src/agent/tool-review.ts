/**
 * Fetching a tool's definition and digest from the orchestrator's GraphQL API for an operator to
 * review before pinning it (`fem-agent policy add`), and showing it. The digest is recomputed here
 * from the definition, so what the operator reads is exactly what the pin allows.
 */
import { toolDefinitionSchema } from "../messaging/contracts.js";
import { DIGEST_PATTERN, errorCode, inArgvOrder, toError, toolDigest, type ToolDefinition } from "../shared/index.js";

export interface ReviewedTool {
  name: string;
  version: string;
  digest: string;
  definition: ToolDefinition;
  /** Env values as the API shows them to this caller (`***` unless ADMIN); not part of the digest. */
  env: Record<string, string>;
}

/** Bound on one request to the orchestrator. @default 30_000 */
export const API_TIMEOUT_MS = 30_000;

const TOOL_QUERY = `query($id: ID!) { tool(id: $id) { name version digest definition env } }`;

interface GraphQLAnswer {
  data?: { tool?: { name: string; version: string; digest: string; definition: unknown; env: Record<string, string> } | null } | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** The GraphQL endpoint of an orchestrator URL: the URL itself, or `/graphql` under a bare host. */
export function graphqlEndpoint(url: string): string {
  const parsed = new URL(url);
  if (parsed.pathname === "/" || parsed.pathname === "") parsed.pathname = "/graphql";
  return parsed.toString();
}

/** Fetches `ref` (`name@version`); throws an Error saying what went wrong, one line. */
export async function fetchToolForReview(orchestratorUrl: string, token: string, ref: string, timeoutMs = API_TIMEOUT_MS): Promise<ReviewedTool> {
  const endpoint = graphqlEndpoint(orchestratorUrl);
  let answer: GraphQLAnswer;
  try {
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: TOOL_QUERY, variables: { id: ref } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    answer = (await response.json()) as GraphQLAnswer;
  } catch (err) {
    const error = toError(err);
    const code = errorCode(error.cause) ?? (error.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : error.message);
    throw new Error(`cannot ask the orchestrator at ${endpoint} (${code})`);
  }
  const [first] = answer.errors ?? [];
  if (first) throw new Error(`the orchestrator at ${endpoint} answered ${first.extensions?.code ?? "an error"}: ${first.message}`);
  const tool = answer.data?.tool;
  if (!tool) throw new Error(`the orchestrator at ${endpoint} returned no tool ${ref}`);
  const definition = toolDefinitionSchema.safeParse(tool.definition);
  if (!definition.success) throw new Error(`the orchestrator's definition of ${ref} is not one this agent understands: ${definition.error.issues[0]?.message ?? "invalid"}`);
  if (`${tool.name}@${tool.version}` !== ref) throw new Error(`asked for ${ref}, the orchestrator returned ${tool.name}@${tool.version}`);
  if (!DIGEST_PATTERN.test(tool.digest)) throw new Error(`the orchestrator's digest of ${ref} is not sha256: and 64 hex digits`);
  const computed = toolDigest(definition.data);
  if (computed !== tool.digest) throw new Error(`the orchestrator's definition of ${ref} gives the digest ${computed}, not the ${tool.digest} it states: not pinned`);
  return { name: tool.name, version: tool.version, digest: tool.digest, definition: definition.data, env: tool.env };
}

/** The definition as an operator reads it before pinning: one fact per line. */
export function describeTool(tool: ReviewedTool): string {
  const d = tool.definition;
  const args = inArgvOrder(d.args).map((a) => {
    const where = a.position === null ? "unpositioned" : `position ${a.position}`;
    const form = a.prefix === null ? `<${a.id}>` : a.type === "BOOLEAN" ? `${a.prefix} (flag when true)` : a.separate ? `${a.prefix} <${a.id}>` : `${a.prefix}<${a.id}>`;
    const facts = [a.type, where, a.required ? "required" : "optional", a.default === null ? "no default" : `default ${JSON.stringify(a.default)}`];
    if (a.allowDash) facts.push("may start with '-'");
    return `    ${form}  (${facts.join(", ")})`;
  });
  const secretEnv = d.secretEnv ?? {};
  const env = d.envKeys.map((key) => `    ${key}=${secretEnv[key] ?? `${tool.env[key] ?? "?"}  (value not pinned)`}`);
  return [
    `tool ${tool.name}@${tool.version}`,
    `  digest       ${tool.digest}`,
    `  executable   ${d.executable}`,
    `  launcher     ${d.launcher}`,
    `  image        ${d.image ?? "(none)"}`,
    `  arguments    ${d.args.length === 0 ? "(none)" : "(in argv order, after the executable)"}`,
    ...args,
    `  env          ${d.envKeys.length === 0 ? "(none)" : ""}`.trimEnd(),
    ...env,
    `  result file  ${d.resultFile ?? "(none)"}`,
    `  outputs      ${d.outputs.length === 0 ? "(none)" : d.outputs.join(", ")}`,
  ].join("\n");
}
