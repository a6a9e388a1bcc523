/** Sizes of the strings the API accepts; the services check them before anything is stored. */
import { BadInputError } from "./errors.js";

/** Names and short texts: workflow and node names, idempotency keys, filters, tool references. */
export const MAX_NAME_CHARS = 200;

/** Values passed on to a run: parameter values, argument defaults, environment values. */
export const MAX_VALUE_CHARS = 4_096;

/** Throws BAD_USER_INPUT naming `field` when `value` is longer than `maxChars` (or holds a NUL, which no argv or environment can carry). */
export function checkText(field: string, value: string, maxChars: number, facts: Record<string, unknown> = {}): void {
  if (value.length > maxChars) throw BadInputError.field(field, `at most ${maxChars} characters (got ${value.length})`, { maxChars, ...facts });
  if (value.includes("\0")) throw BadInputError.field(field, "may not contain NUL characters", facts);
}
