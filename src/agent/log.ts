/** The agent's own diagnostics (not run logs): one line each, on stderr by default. */
export interface AgentLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Writes `fem-agent: <message>` lines to stderr. */
export function createStderrLogger(prefix = "fem-agent"): AgentLogger {
  const write = (level: string, message: string) => process.stderr.write(`${new Date().toISOString()} ${prefix} ${level} ${message}\n`);
  return {
    info: (message) => write("info", message),
    warn: (message) => write("warn", message),
    error: (message) => write("error", message),
  };
}

/** A logger that drops everything, for tests. */
export const silentLogger: AgentLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Turns anything thrown into an `Error`, keeping the original as `cause` when it was not one. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === "string" ? thrown : `non-error thrown: ${String(thrown)}`, { cause: thrown });
}

/** The `code` of a Node system error (`ENOENT`, `ESRCH`, …), if any. */
export function errorCode(thrown: unknown): string | undefined {
  const code = (thrown as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}
