/**
 * JSON with object keys sorted at every level, no whitespace: equal values give equal text whatever
 * their key order. `known` gives the text of objects already written (by identity), so a part that
 * many values share is written once.
 */
export function canonicalJson(value: unknown, known?: ReadonlyMap<object, string>): string {
  if (value !== null && typeof value === "object") {
    const text = known?.get(value);
    if (text !== undefined) return text;
    if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? "null" : canonicalJson(item, known))).join(",")}]`;
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k], known)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
