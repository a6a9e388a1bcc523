/**
 * Where `fem` keeps the orchestrator's URL and the caller's token: `$XDG_CONFIG_HOME/fem/config.json`
 * (else `~/.config/fem/config.json`), mode 0600 in a 0700 directory. `FEM_URL` and `FEM_TOKEN`
 * override what the file says.
 */
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { CliError, toError } from "./errors.js";

/** This process's environment: `fem` reads `FEM_URL`, `FEM_TOKEN` and the config directory's variables from it, here only. */
export function cliEnvironment(): CliEnv {
  return process.env;
}

export interface StoredSettings {
  url: string;
  token: string;
}

export interface Settings {
  url: string;
  token: string | null;
  /** Where the token came from, to say so when the server refuses it. */
  tokenSource: string;
}

/** The environment the CLI reads (passed in, not read from globals). */
export type CliEnv = Record<string, string | undefined>;

export const DEFAULT_URL = "http://127.0.0.1:4000/graphql";

export function settingsPath(env: CliEnv): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith("/") ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), ".config");
  return join(base, "fem", "config.json");
}

/** The GraphQL endpoint for what a user typed: a bare origin gets `/graphql`. Throws on a non-HTTP URL. */
export function graphqlUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw CliError.usage(`not a URL: ${text}`, { cause: err });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw CliError.usage(`the URL must start with http:// or https://, not ${url.protocol}`);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/graphql";
  return url.toString();
}

export async function readStoredSettings(path: string): Promise<StoredSettings | null> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw CliError.usage(`cannot read ${path}: ${toError(err).message}`, { cause: err });
  }
  try {
    const value = JSON.parse(text) as Partial<StoredSettings>;
    if (typeof value.url !== "string" || typeof value.token !== "string") throw new Error("url or token missing");
    return { url: value.url, token: value.token };
  } catch (err) {
    throw CliError.usage(`${path} is damaged (${toError(err).message}); run fem login again`, { cause: err });
  }
}

/** Writes the settings readable by the user only: a 0600 file written aside, then renamed over. */
export async function writeStoredSettings(path: string, settings: StoredSettings): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const aside = `${path}.${process.pid}.tmp`;
  await writeFile(aside, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
  // The mode given to writeFile applies only to a new file; make sure of it.
  await chmod(aside, 0o600);
  await rename(aside, path);
}

export async function removeStoredSettings(path: string): Promise<boolean> {
  const existed = await stat(path).then(
    () => true,
    () => false,
  );
  await rm(path, { force: true });
  return existed;
}

/** What a command talks to: the environment first, then the stored settings, then the default URL. */
export async function resolveSettings(env: CliEnv): Promise<Settings> {
  const path = settingsPath(env);
  const stored = env.FEM_URL && env.FEM_TOKEN ? null : await readStoredSettings(path);
  const url = graphqlUrl(env.FEM_URL || stored?.url || DEFAULT_URL);
  if (env.FEM_TOKEN) return { url, token: env.FEM_TOKEN, tokenSource: "FEM_TOKEN" };
  // A stored token is sent only to the orchestrator it was stored for, never to another FEM_URL.
  if (stored && graphqlUrl(stored.url) === url) return { url, token: stored.token, tokenSource: path };
  return { url, token: null, tokenSource: "none" };
}
