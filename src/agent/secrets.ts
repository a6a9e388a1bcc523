/**
 * Node-local secrets (`FEM_SECRETS_FILE`): read once at start from a file only the agent's user may
 * read, referenced by tools as `${secret:NAME}` in env values, and substituted only into the
 * environment of the process a run starts. No value is ever logged, journaled or sent: messages
 * name secrets, never their values.
 */
import { LineCounter, parseDocument } from "yaml";
import { referencesSecrets, SECRET_NAME_PATTERN, secretNames, secretRefProblem, substituteSecrets } from "../shared/index.js";
import { readPrivateFile } from "./private-file.js";

/** Secret values by name; held in memory only. */
export type NodeSecrets = ReadonlyMap<string, string>;

export const NO_SECRETS: NodeSecrets = new Map();

const SETTING = "FEM_SECRETS_FILE";

/**
 * Parses a secrets document (YAML, or JSON which YAML reads too): a mapping of `NAME: value`, values
 * strings. Problems name the line or the secret, never a value. Throws an Error listing them.
 */
export function parseSecrets(text: string, file: string): NodeSecrets {
  const lineCounter = new LineCounter();
  // Not pretty: a pretty error quotes the line it is on, which may hold a value.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const [syntax] = doc.errors;
  if (syntax) {
    const at = lineCounter.linePos(syntax.pos[0]);
    throw new Error(`${SETTING} ${file} cannot be parsed as YAML or JSON (${syntax.code} at line ${at.line}, column ${at.col})`);
  }
  const content: unknown = doc.toJS({ maxAliasCount: 0 });
  if (content === null || content === undefined) return new Map();
  if (typeof content !== "object" || Array.isArray(content)) throw new Error(`${SETTING} ${file} must hold a mapping of NAME: value`);
  const secrets = new Map<string, string>();
  const problems: string[] = [];
  for (const [name, value] of Object.entries(content as Record<string, unknown>)) {
    const shown = JSON.stringify(name.slice(0, 130));
    if (!SECRET_NAME_PATTERN.test(name)) problems.push(`${shown} is not a valid secret name (${SECRET_NAME_PATTERN.source})`);
    else if (typeof value !== "string") problems.push(`${name}: the value must be a string (quote it)`);
    else if (value.includes("\0")) problems.push(`${name}: the value holds a NUL character, which no environment variable can`);
    else secrets.set(name, value);
  }
  if (problems.length > 0) throw new Error(`${SETTING} ${file} is invalid: ${problems.join("; ")}`);
  return secrets;
}

/** Reads the secrets file; throws a one-line Error (mode open to group/others, unreadable, unparsable). */
export async function readSecrets(file: string): Promise<NodeSecrets> {
  return parseSecrets(await readPrivateFile(file, SETTING), file);
}

/**
 * Why the run's env cannot be resolved on this node (a malformed reference, or a secret the node
 * does not hold, by name), or null. Checked before a dispatch is accepted, so nothing runs.
 */
export function secretsProblem(env: Readonly<Record<string, string>>, secrets: NodeSecrets): string | null {
  const missing = new Set<string>();
  for (const [key, value] of Object.entries(env)) {
    if (!referencesSecrets(value)) continue;
    const problem = secretRefProblem(value);
    if (problem) return `env ${key} ${problem}`;
    for (const name of secretNames(value)) if (!secrets.has(name)) missing.add(name);
  }
  if (missing.size === 0) return null;
  const names = [...missing].sort();
  return `the tool's env references ${names.length === 1 ? "the secret" : "the secrets"} ${names.join(", ")}, which this node does not hold (${SETTING})`;
}

/**
 * The whole environment of a run's process, built from nothing: the tool's env with its secret
 * references resolved. Nothing of the agent's own environment is inherited. Call after
 * `secretsProblem` found none; a secret missing here throws (naming it).
 */
export function buildRunEnv(env: Readonly<Record<string, string>>, secrets: NodeSecrets): Record<string, string> {
  const runEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    runEnv[key] = substituteSecrets(value, (name) => {
      const secret = secrets.get(name);
      if (secret === undefined) throw new Error(`env ${key} references the secret ${name}, which this node does not hold (${SETTING})`);
      return secret;
    });
  }
  return runEnv;
}
