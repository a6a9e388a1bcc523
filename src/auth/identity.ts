/** Who is calling: the one shape every way of authenticating produces. */

/** Roles that hold across projects; project roles come with projects. */
export const GLOBAL_ROLES = ["ADMIN", "NODE_OPERATOR"] as const;

export type GlobalRole = (typeof GLOBAL_ROLES)[number];

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
  /** The API token used, when `via` is `api-token`. */
  apiTokenId?: string;
}
