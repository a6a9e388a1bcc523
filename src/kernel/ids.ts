/** Identifier checks shared by every domain. */
import { BadInputError } from "./errors.js";

/** Longest subject accepted (OIDC subjects are at most 255 ASCII characters). */
export const MAX_SUBJECT_CHARS = 255;

/**
 * Checks a subject (an OIDC `sub`, or an API token's owner) given as input: 1-255 characters, no
 * control characters. Returns it; throws BAD_USER_INPUT naming `field` otherwise.
 */
export function checkSubject(field: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_SUBJECT_CHARS) {
    throw BadInputError.field(field, `must be a subject of 1 to ${MAX_SUBJECT_CHARS} characters`);
  }
  if (/[\u0000-\u001f\u007f]/.test(value)) throw BadInputError.field(field, "must be a subject without control characters");
  return value;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Throws BAD_USER_INPUT for a malformed id, so a typo never reads as "not found". */
export function checkUuid(field: string, id: string): void {
  if (!UUID.test(id)) throw BadInputError.field(field, `${JSON.stringify(id)} is not a valid id (a UUID)`);
}
