/**
 * References to node-local secrets in a tool's env values: `${secret:NAME}`. The orchestrator
 * stores and sends only this text; the agent substitutes the values from its own secrets file just
 * before it starts the process.
 */

/** A secret's name: what `${secret:NAME}` and the node's secrets file use. */
export const SECRET_NAME_PATTERN = /^[A-Z_][A-Z0-9_]{0,127}$/;

/** Every `${secret:…}` in a text, whatever is between the colon and the brace. */
const SECRET_REF = /\$\{secret:([^}]*)\}/g;
/** The start of a reference, to catch one that is never closed. */
const SECRET_REF_START = "${secret:";

/** The names `value` references, each once, in order of first appearance. */
export function secretNames(value: string): string[] {
  return [...new Set([...value.matchAll(SECRET_REF)].map((m) => m[1] ?? ""))];
}

/** Whether `value` references any secret (well-formed or not). */
export function referencesSecrets(value: string): boolean {
  return value.includes(SECRET_REF_START);
}

/** What is wrong with the secret references of `value` (an unclosed one, a bad name), or null. */
export function secretRefProblem(value: string): string | null {
  const closed = [...value.matchAll(SECRET_REF)].length;
  const opened = value.split(SECRET_REF_START).length - 1;
  if (opened !== closed) return `has an unclosed \${secret:…} reference`;
  for (const name of secretNames(value)) {
    if (!SECRET_NAME_PATTERN.test(name)) return `references the secret ${JSON.stringify(name.slice(0, 130))}, which is not a valid name (${SECRET_NAME_PATTERN.source})`;
  }
  return null;
}

/** The env entries whose values reference secrets: what a tool's digest covers of its env values. */
export function secretEnvOf(env: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === "string" && referencesSecrets(e[1])));
}

/** `value` with every reference replaced by its secret; `lookup` is only asked for names `value` references. */
export function substituteSecrets(value: string, lookup: (name: string) => string): string {
  return value.replace(SECRET_REF, (_ref, name: string) => lookup(name));
}
