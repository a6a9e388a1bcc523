/** Turning anything thrown into something a message can be built from. */

/** Turns anything thrown into an `Error`; a value that is not one is kept as `cause`. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === "string" ? thrown : describe(thrown), { cause: thrown });
}

/** The string `code` of a thrown value (`ENOENT`, `ESRCH`, `ECONNREFUSED`, …), if it has one. */
export function errorCode(thrown: unknown): string | undefined {
  const code = (thrown as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

function describe(value: unknown): string {
  try {
    // JSON.stringify returns undefined for undefined, functions and symbols, and throws on cycles and bigints.
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
