/**
 * `fem login` and `fem logout`. The token never comes on the command line, where every process
 * on the machine can read it (/proc/<pid>/cmdline) and shells keep it in their history: it comes
 * from a file (`--token-file`), from standard input when that is not a terminal, or from a hidden
 * prompt.
 */
import { readFile } from "node:fs/promises";
import { createApi } from "../api.js";
import type { CommandContext } from "../context.js";
import { CliError, toError } from "../errors.js";
import { ME } from "../operations.js";
import { graphqlUrl, removeStoredSettings, settingsPath, writeStoredSettings } from "../config.js";

export interface LoginOptions {
  url: string;
  tokenFile?: string;
}

export async function login(ctx: CommandContext, options: LoginOptions): Promise<void> {
  const url = graphqlUrl(options.url);
  const token = options.tokenFile !== undefined ? await tokenFromFile(options.tokenFile) : process.stdin.isTTY ? await promptHidden("token: ") : await tokenFromStdin();
  if (!token) throw CliError.usage("no token given (from --token-file, standard input, or the prompt)");
  const api = createApi({ url, token, tokenSource: options.tokenFile ?? "the token given" });
  // Check the pair before storing it, so a typo is found now and not at the next command.
  const { me } = await api.request<{ me: { subject: string; roles: string[]; via: string } }>(ME);
  const path = settingsPath(ctx.env);
  await writeStoredSettings(path, { url, token });
  ctx.out.line(`signed in to ${url} as ${me.subject}${me.roles.length ? ` (${me.roles.join(", ")})` : ""}`);
  ctx.out.note(`the URL and token are stored in ${path} (mode 0600)`);
  if (ctx.env.FEM_TOKEN || ctx.env.FEM_URL) ctx.out.note("note: FEM_URL / FEM_TOKEN are set in this environment and override what is stored");
}

export async function logout(ctx: CommandContext): Promise<void> {
  const path = settingsPath(ctx.env);
  const removed = await removeStoredSettings(path);
  ctx.out.line(removed ? `signed out: removed ${path}` : `not signed in (no ${path})`);
}

async function tokenFromFile(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trim();
  } catch (err) {
    throw CliError.usage(`cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? toError(err).message}`, { cause: err });
  }
}

async function tokenFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8").trim();
}

/** Reads one line from the terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  input.setEncoding("utf8");
  let typed = "";
  return new Promise((resolve, reject) => {
    const finish = (error: Error | null) => {
      input.setRawMode(false);
      input.pause();
      input.off("data", onData);
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(typed.trim());
    };
    const onData = (chars: string) => {
      for (const ch of chars) {
        if (ch === "\r" || ch === "\n" || ch === "\u0004") return finish(null);
        if (ch === "\u0003") return finish(CliError.usage("login interrupted"));
        if (ch === "\u007f" || ch === "\b") typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    input.on("data", onData);
  });
}
