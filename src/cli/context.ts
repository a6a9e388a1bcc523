/** What every command gets: the environment, where to print, and the orchestrator once asked for. */
import { createApi, type Api } from "./api.js";
import type { Output } from "./render.js";
import { resolveSettings, type CliEnv, type Settings } from "./config.js";

export interface CommandContext {
  env: CliEnv;
  out: Output;
  settings(): Promise<Settings>;
  api(): Promise<Api>;
  /** Calls `handler` on the first Ctrl-C (SIGINT); returns the removal. A second Ctrl-C exits at once. */
  onInterrupt(handler: () => void): () => void;
}

export function createContext(env: CliEnv, out: Output): CommandContext {
  let settings: Promise<Settings> | null = null;
  const context: CommandContext = {
    env,
    out,
    settings: () => (settings ??= resolveSettings(env)),
    api: async () => createApi(await context.settings()),
    onInterrupt(handler) {
      let interrupted = false;
      const listener = () => {
        if (interrupted) process.exit(130);
        interrupted = true;
        handler();
      };
      process.on("SIGINT", listener);
      return () => process.off("SIGINT", listener);
    },
  };
  return context;
}

/** Every page of a connection, `first` at a time. */
export async function allPages<T>(fetchPage: (after: string | null) => Promise<{ nodes: T[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }>): Promise<T[]> {
  const items: T[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await fetchPage(after);
    items.push(...page.nodes);
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return items;
    after = page.pageInfo.endCursor;
  }
}
