/** Who is calling: the one shape every way of authenticating produces. */

import { GlobalRole } from "../kernel/index.js";

/** Roles that hold across projects (the kernel's GlobalRole); project roles are per project. */
export const GLOBAL_ROLES: readonly GlobalRole[] = Object.values(GlobalRole);

export function isGlobalRole(value: unknown): value is GlobalRole {
  return typeof value === "string" && (GLOBAL_ROLES as readonly string[]).includes(value);
}

/** How the caller proved who it is. */
export type IdentitySource = "oidc" | "api-token";

/** An authenticated caller; `subject` is the identity provider's `sub` (or an API token's owner). */
export interface Identity {
  subject: string;
  name: string | null;
  email: string | null;
  roles: GlobalRole[];
  via: IdentitySource;
  /** When the credential stops being valid: an OIDC token's `exp`, an API token's `expiresAt`; null when it never expires. */
  expiresAt: Date | null;
  /** The API token used, when `via` is `api-token`. */
  apiTokenId?: string;
}
