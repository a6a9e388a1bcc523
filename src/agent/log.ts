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
