/**
 * `fem-agent policy add <name@version>` and `fem-agent policy show`: an operator's review and
 * pinning of tools in the node's policy file. Settings follow the agent's pattern (environment
 * variable or flag, flags win), but the API token is never taken on the command line.
 */
import { createInterface } from "node:readline/promises";
import type { ToolPolicy } from "./policy.js";
import { loadPolicyFile, pinTool } from "./policy-file.js";
import { readPrivateFile } from "./private-file.js";
import { parseCommandLine, runSubcommand, UsageError } from "./subcommand.js";
import { describeTool, fetchToolForReview } from "./tool-review.js";

export interface PolicyCliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** How long the y/N question waits for an answer before it counts as no. @default 300_000 // 5 minutes */
const CONFIRM_TIMEOUT_MS = 300_000;

const OUTPUTS_MEANING: Record<ToolPolicy["outputs"], string> = {
  auto: "released when the run succeeds",
  review: "released when an operator of this node approves them through the API",
  local: "released only with fem-agent outputs approve on this node",
};

const USAGE = `usage: fem-agent policy add <name@version> [--yes]   fetch a tool's definition and digest, show it, and pin it
       fem-agent policy show                           what the policy file allows
  --policy-file <file>      FEM_POLICY_FILE         the node's policy file (YAML, or JSON when it ends in .json)
  --orchestrator-url <url>  FEM_ORCHESTRATOR_URL    the orchestrator's GraphQL URL (add only)
  --api-token-file <file>   FEM_API_TOKEN_FILE      file (mode 0600) holding an API token; or FEM_API_TOKEN in the
                                                    environment. Never a token on the command line (add only)
  --yes, -y                                         pin without asking (otherwise asked when stdin is a terminal)`;

const OPTIONS = {
  "policy-file": { type: "string" },
  "orchestrator-url": { type: "string" },
  "api-token-file": { type: "string" },
  yes: { type: "boolean", short: "y" },
  help: { type: "boolean", short: "h" },
} as const;

/** Runs `fem-agent policy …` (arguments after `policy`); resolves to the exit code. */
export function runPolicyCommand(argv: readonly string[], io: PolicyCliIo): Promise<number> {
  return runSubcommand("policy", io.stdout, io.stderr, (print) => policyCommand(argv, io, print));
}

async function policyCommand(argv: readonly string[], io: PolicyCliIo, print: (text: string) => void): Promise<number> {
  if (argv.some((arg) => /^--(api-)?token(=|$)/.test(arg))) {
    throw new UsageError("an API token is never taken on the command line (other processes can read it): use FEM_API_TOKEN_FILE or FEM_API_TOKEN");
  }
  const { values, positionals } = parseCommandLine(argv, OPTIONS);
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    print(USAGE);
    return values.help ? 0 : 1;
  }
  const policyFile = setting(values["policy-file"], io.env.FEM_POLICY_FILE, "FEM_POLICY_FILE / --policy-file");
  if (command === "show") {
    if (rest.length > 0) throw new UsageError(`policy show takes no arguments, got ${rest.join(" ")}`);
    print(showPolicy(policyFile, await loadPolicyFile(policyFile)));
    return 0;
  }
  if (command !== "add") throw new UsageError(`unknown command "policy ${command}"`);
  const [ref, ...extra] = rest;
  if (ref === undefined || extra.length > 0 || !/^[^@\s]+@[^@\s]+$/.test(ref)) throw new UsageError("policy add takes one tool as name@version");
  const url = setting(values["orchestrator-url"], io.env.FEM_ORCHESTRATOR_URL, "FEM_ORCHESTRATOR_URL / --orchestrator-url");
  checkUrl(url, io.stderr);
  const token = await apiToken(values["api-token-file"] ?? io.env.FEM_API_TOKEN_FILE, io.env.FEM_API_TOKEN);
  const tool = await fetchToolForReview(url, token, ref);
  print(describeTool(tool));
  const pin = { name: tool.name, version: tool.version, digest: tool.digest };
  if (!values.yes && !(await confirm(`Pin ${ref} with digest ${tool.digest} in ${policyFile}? [y/N] `, io))) {
    io.stderr.write(io.stdin.isTTY ? "not pinned\n" : "not pinned: stdin is not a terminal, so nobody was asked; review the definition above and run again with --yes\n");
    return 1;
  }
  const change = await pinTool(policyFile, pin);
  if (change.kind === "unchanged") print(`${ref} with digest ${tool.digest} is already pinned in ${policyFile}`);
  else if (change.kind === "updated") print(`pinned ${ref} with digest ${tool.digest} in ${policyFile}, replacing ${change.replaced.join(", ")}`);
  else print(`pinned ${ref} with digest ${tool.digest} in ${policyFile}`);
  if (change.kind !== "unchanged") print("restart the agent for it to take effect");
  return 0;
}

/** The flag, else the environment variable; required. */
function setting(flag: string | undefined, env: string | undefined, name: string): string {
  const value = (flag ?? env)?.trim();
  if (!value) throw new UsageError(`${name} is required`);
  return value;
}

function checkUrl(url: string, stderr: NodeJS.WritableStream): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`FEM_ORCHESTRATOR_URL / --orchestrator-url is not a valid URL: "${url}"`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new UsageError(`FEM_ORCHESTRATOR_URL / --orchestrator-url must be http:// or https://, got "${url}"`);
  if (parsed.username || parsed.password) throw new UsageError("FEM_ORCHESTRATOR_URL / --orchestrator-url must not carry a user or password");
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(parsed.hostname);
  if (parsed.protocol === "http:" && !loopback) stderr.write(`fem-agent policy: warning: ${url} is plain HTTP, so the API token travels unencrypted\n`);
}

/** The API token from its file (which must be mode 0600/0400) or from FEM_API_TOKEN. */
async function apiToken(file: string | undefined, value: string | undefined): Promise<string> {
  const token = file?.trim() ? (await readPrivateFile(file.trim(), "FEM_API_TOKEN_FILE")).trim() : value?.trim();
  if (!token) throw new UsageError("an API token is required: FEM_API_TOKEN_FILE (a file of mode 0600) or FEM_API_TOKEN");
  return token;
}

/** Asks on the terminal; false when stdin is not one, on anything but y/yes, or after CONFIRM_TIMEOUT_MS. */
async function confirm(question: string, io: PolicyCliIo): Promise<boolean> {
  if (!io.stdin.isTTY) return false;
  const prompt = createInterface({ input: io.stdin, output: io.stdout });
  try {
    const answer = await prompt.question(question, { signal: AbortSignal.timeout(CONFIRM_TIMEOUT_MS) });
    return /^y(es)?$/i.test(answer.trim());
  } catch {
    return false;
  } finally {
    prompt.close();
  }
}

function showPolicy(file: string, policy: ToolPolicy): string {
  const lines = [`policy ${file}`];
  if (policy.allowAny) lines.push("  allow: any — every tool runs (each still checked against its digest and template)");
  for (const t of policy.tools) lines.push(`  ${t.name}@${t.version ?? "*"}  ${t.digests.join(", ")}`);
  if (!policy.allowAny && policy.tools.length === 0) lines.push("  no tool: this node runs nothing");
  for (const d of policy.datasets) lines.push(`  dataset ${d.name}  ${d.path}${d.description ? `  (${d.description})` : ""}`);
  lines.push(`  outputs: ${policy.outputs} — ${OUTPUTS_MEANING[policy.outputs]}`);
  lines.push(`  logs: ${policy.logs} — ${policy.logs === "stream" ? "runs' stdout and stderr stream to the orchestrator" : "runs' stdout and stderr stay on the node, released like outputs"}`);
  return lines.join("\n");
}
