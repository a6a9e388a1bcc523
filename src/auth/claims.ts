/** Reading identity facts out of a token's claims. */
import type { GlobalRole } from "../kernel/index.js";
import { isGlobalRole } from "./identity.js";

/** The value at a dotted path (`realm_access.roles`), or undefined when any step is missing. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  let value: unknown = claims;
  for (const step of path.split(".")) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[step];
  }
  return value;
}

export function stringClaim(claims: Record<string, unknown>, path: string): string | null {
  const value = claimAt(claims, path);
  return typeof value === "string" && value.length > 0 ? value : null;
}

/**
 * The global roles named by a claim holding an array of strings or one space-separated string;
 * names that are not global roles (a provider's `offline_access`, say) are ignored.
 */
export function rolesClaim(claims: Record<string, unknown>, path: string | undefined): GlobalRole[] {
  if (!path) return [];
  const value = claimAt(claims, path);
  const names = Array.isArray(value) ? value : typeof value === "string" ? value.split(/\s+/) : [];
  return [...new Set(names.filter(isGlobalRole))].sort();
}
