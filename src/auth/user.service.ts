/** Users as the identity provider last described them. */
import type { EntityManager } from "@mikro-orm/core";
import type { Identity } from "./identity.js";
import { User } from "./user.entity.js";

/**
 * Records an OIDC caller (or refreshes its name, email, roles and `last_seen_at`), so people can be
 * named and added to projects by subject. API tokens are skipped: they speak for a subject, not as one.
 */
export async function rememberUser(em: EntityManager, identity: Identity, now: Date = new Date()): Promise<User | null> {
  if (identity.via !== "oidc") return null;
  return em.upsert(
    User,
    { subject: identity.subject, displayName: identity.name, email: identity.email, roles: identity.roles, createdAt: now, lastSeenAt: now },
    { onConflictFields: ["subject"], onConflictMergeFields: ["displayName", "email", "roles", "lastSeenAt"] },
  );
}
