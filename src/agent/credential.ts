/** The node's credential (its broker password), read from where the configuration says, never logged. */
import fs from "node:fs/promises";
import type { AgentConfig } from "./config.js";

/** Longest credential accepted (registerNode's are 41 characters). */
const MAX_CREDENTIAL_CHARS = 1_024;

/** The credential; throws a one-line error when the file is missing, readable by others, or empty. */
export async function readNodeCredential(source: AgentConfig["credential"]): Promise<string> {
  if ("value" in source) return checked(source.value, "FEM_NODE_CREDENTIAL");
  const stat = await fs.stat(source.file).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`FEM_NODE_CREDENTIAL_FILE ${source.file} cannot be read (${err.code ?? err.message})`);
  });
  if (!stat.isFile()) throw new Error(`FEM_NODE_CREDENTIAL_FILE ${source.file} is not a regular file`);
  if ((stat.mode & 0o077) !== 0) {
    throw new Error(`FEM_NODE_CREDENTIAL_FILE ${source.file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}); make it the agent's own: chmod 600`);
  }
  return checked((await fs.readFile(source.file, "utf8")).trim(), `FEM_NODE_CREDENTIAL_FILE ${source.file}`);
}

function checked(credential: string, where: string): string {
  if (credential === "") throw new Error(`${where} is empty`);
  if (credential.length > MAX_CREDENTIAL_CHARS || /\s/.test(credential)) throw new Error(`${where} does not hold one credential (one line, no spaces, at most ${MAX_CREDENTIAL_CHARS} characters)`);
  return credential;
}
