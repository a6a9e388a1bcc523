/** Keeps an audit row's `details` small and free of secrets before it is hashed and stored. */
import { canonicalJson } from "../shared/index.js";

/** Largest canonical JSON of `details` kept as given; anything larger is replaced by its size. @default 4_096 */
export const MAX_DETAILS_BYTES = 4_096;

const SECRET_KEY = /token|secret|password|passwd|credential|authorization|cookie|api[-_]?key|private[-_]?key/i;

function redact(value: unknown): unknown {
  // jsonb refuses the NUL character.
  if (typeof value === "string") return value.replaceAll("\u0000", "");
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, SECRET_KEY.test(k) ? "[redacted]" : redact(v)]));
}

/**
 * Redacts members whose names look secret, and replaces details over `MAX_DETAILS_BYTES` by
 * `{ truncated: true, sizeBytes }`. The result survives a round trip through jsonb unchanged, so
 * the hash computed before the insert matches the one recomputed from the stored row.
 */
export function sanitiseDetails(details: Record<string, unknown> | undefined): Record<string, unknown> {
  const redacted = JSON.parse(canonicalJson(redact(details ?? {}))) as Record<string, unknown>;
  const sizeBytes = Buffer.byteLength(canonicalJson(redacted), "utf8");
  return sizeBytes > MAX_DETAILS_BYTES ? { truncated: true, sizeBytes } : redacted;
}
