/** Keeping what PostgreSQL refuses out of stored text and numbers. */

/** `text` on one line: every run of whitespace (newlines included) as one space, trimmed. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** Largest value of a PostgreSQL `integer` column. */
export const PG_INT_MAX = 2_147_483_647;
/** Smallest value of a PostgreSQL `integer` column. */
export const PG_INT_MIN = -2_147_483_648;

/** What a NUL character (which PostgreSQL refuses in `text` and `jsonb`) is replaced by. */
export const NUL_REPLACEMENT = "\uFFFD";

/** `text` with every NUL replaced by U+FFFD, and how many there were. */
export function replaceNul(text: string): { text: string; replaced: number } {
  if (!text.includes("\u0000")) return { text, replaced: 0 };
  const parts = text.split("\u0000");
  return { text: parts.join(NUL_REPLACEMENT), replaced: parts.length - 1 };
}

/** A JSON value with every NUL in its strings and keys replaced by U+FFFD, and how many there were. */
export function replaceNulDeep(value: unknown): { value: unknown; replaced: number } {
  let replaced = 0;
  const clean = (text: string): string => {
    const result = replaceNul(text);
    replaced += result.replaced;
    return result.text;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return clean(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, item]) => [clean(k), walk(item)]));
    return v;
  };
  const result = walk(value);
  return { value: result, replaced };
}

/** Whether `n` fits a PostgreSQL `integer` column. */
export function fitsPgInt(n: number): boolean {
  return Number.isInteger(n) && n >= PG_INT_MIN && n <= PG_INT_MAX;
}
