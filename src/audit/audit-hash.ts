/**
 * The audit chain's hashing: each row's hash is the hex sha256 of the canonical JSON of its fields
 * and the previous row's hash, so editing, deleting or reordering a row breaks the chain after it.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../shared/index.js";

/** `prevHash` of the first row. */
export const GENESIS_HASH = "0".repeat(64);

/** The fields a row's hash covers, as they are stored. */
export interface HashedAuditFields {
  id: string;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  requestId: string;
  details: Record<string, unknown>;
  prevHash: string;
}

/**
 * The row's hash. The id is covered so that a row moved to another position fails; `at` is
 * covered at millisecond precision, which is what the appender writes.
 */
export function hashAuditFields(fields: HashedAuditFields): string {
  const canonical = canonicalJson({ ...fields, at: fields.at.toISOString() });
  return createHash("sha256").update(canonical, "utf8").digest("hex");
}
