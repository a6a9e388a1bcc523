/**
 * The CLI's errors: each is printed as one line on stderr (`fem: …`) and sets the exit status.
 * Exit statuses: 1 when the server refused or the followed work did not succeed, 2 for a problem
 * on this side (usage, a file, no answer from the server).
 */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export class CliError extends Error {
  constructor(
    message: string,
    /** The server's error code (`extensions.code`), when the server answered with one. */
    readonly code: string | null = null,
    readonly exitCode: number = EXIT_FAILED,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** A problem on this side: bad usage, an unreadable or invalid file. */
  static usage(message: string, options?: ErrorOptions): CliError {
    return new CliError(message, null, EXIT_USAGE, options);
  }
}

/** Turns whatever was thrown into an Error, keeping the original as `cause`. */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err), { cause: err });
}

/**
 * What is printed for an error: one line, `CODE: message` for the server's errors. A file's
 * problems (a usage error without a code) keep one line each.
 */
export function errorLines(err: unknown): string[] {
  const error = toError(err);
  if (error instanceof CliError && !error.code && error.exitCode === EXIT_USAGE) return error.message.split("\n");
  const text = error instanceof CliError && error.code ? `${error.code}: ${error.message}` : error.message;
  return [text.replace(/\s*\n\s*/g, " ")];
}
