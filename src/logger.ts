/**
 * The orchestrator's structured logger, on pino: one JSON line per event on stderr (or pretty
 * lines with `LOG_FORMAT=pretty` when pino-pretty is installed), quiet below its level. Every
 * message and field is scrubbed of credentials before it is written (see `redactSecrets`).
 */
import { createRequire } from "node:module";
import { pino, type DestinationStream, type Logger as PinoLogger } from "pino";
import { maskUrl } from "./shared/index.js";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFormat = "json" | "pretty";

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `bindings` (e.g. `{ requestId }`) to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  /** @default "json" */
  format?: LogFormat;
}

/** Field names whose values are never written, at any depth. */
const SECRET_KEY = /^(authorization|proxy-authorization|cookie|set-cookie|password|passwd|secret|token|access_?token|refresh_?token|id_?token|credential|api_?key|private_?key|client_?secret)$/i;
/** Our own tokens and node credentials, wherever they appear in a text. */
const FEM_SECRET = /\bfem_(pat|node)_[A-Za-z0-9_-]+/g;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
/** A URL with a user:password part. */
const URL_WITH_PASSWORD = /\b[a-z][a-z\d+.-]*:\/\/[^\s/@:]*:[^\s/@]*@[^\s"']*/gi;
const REDACTED = "[redacted]";

/** `text` with tokens, credentials, bearer headers and URL passwords masked. */
export function redactText(text: string): string {
  if (!text.includes("fem_") && !/bearer|basic|:\/\//i.test(text)) return text;
  return text
    .replace(FEM_SECRET, (_, kind: string) => `fem_${kind}_${REDACTED}`)
    .replace(BEARER, (_, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(URL_WITH_PASSWORD, (url) => maskUrl(url));
}

/** A copy of `value` with secret-named fields replaced and every string passed through `redactText`. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactText(value);
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (value instanceof Error) return { name: value.name, message: redactText(value.message) };
  if (value instanceof Date) return value;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = SECRET_KEY.test(key) && v !== null && v !== undefined ? REDACTED : redactSecrets(v, depth + 1);
  return out;
}

function prettyStream(): DestinationStream | null {
  try {
    createRequire(import.meta.url).resolve("pino-pretty");
  } catch {
    return null;
  }
  return pino.transport({ target: "pino-pretty", options: { destination: 2, translateTime: "SYS:HH:MM:ss.l", messageKey: "message", ignore: "pid,hostname" } }) as DestinationStream;
}

function wrap(base: PinoLogger): Logger {
  const at = (level: "debug" | "info" | "warn" | "error") => (message: string, fields?: Record<string, unknown>) => {
    if (!base.isLevelEnabled(level)) return;
    base[level](fields ? (redactSecrets(fields) as Record<string, unknown>) : {}, redactText(message));
  };
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (bindings) => wrap(base.child(redactSecrets(bindings) as Record<string, unknown>)),
  };
}

/**
 * @param write receives each JSON line without its newline (tests capture them); by default lines
 * go to stderr, synchronously so that nothing is lost at exit.
 */
export function createLogger(level: LogLevel, write?: (line: string) => void, options: LoggerOptions = {}): Logger {
  const stream: DestinationStream | null = write
    ? { write: (line: string) => write(line.endsWith("\n") ? line.slice(0, -1) : line) }
    : options.format === "pretty"
      ? prettyStream()
      : null;
  const base = pino(
    {
      level,
      messageKey: "message",
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Errors are already turned into { name, message } (scrubbed); no stack traces in lines.
      serializers: { err: (value: unknown) => value },
    },
    stream ?? pino.destination({ fd: 2, sync: true }),
  );
  const logger = wrap(base);
  if (options.format === "pretty" && !write && !stream) logger.warn("LOG_FORMAT=pretty needs pino-pretty (a devDependency); writing JSON lines");
  return logger;
}
