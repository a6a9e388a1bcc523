/** Identifier checks shared by every domain. */
import { BadInputError } from "./errors.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Throws BAD_USER_INPUT for a malformed id, so a typo never reads as "not found". */
export function checkUuid(field: string, id: string): void {
  if (!UUID.test(id)) throw BadInputError.field(field, `${JSON.stringify(id)} is not a valid id (a UUID)`);
}
