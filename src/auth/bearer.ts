/** Turning an `Authorization` header into the caller it names. */
import { UnauthenticatedError } from "../kernel/index.js";
import { API_TOKEN_PREFIX } from "./api-token.service.js";
import type { Identity } from "./identity.js";

export interface BearerDeps {
  /** Checks an API token (`fem_pat_…`). */
  verifyApiToken(token: string): Promise<Identity>;
  /** Checks anything else as an OIDC access token; absent when no identity provider is configured. */
  verifyOidcToken?: (token: string) => Promise<Identity>;
}

/**
 * The caller behind `Authorization: Bearer <token>`: an API token when it starts with `fem_pat_`,
 * else an OIDC access token. Null when there is no header (anonymous); UNAUTHENTICATED when the
 * header is malformed or the token is refused.
 */
export async function resolveBearer(header: string | null | undefined, deps: BearerDeps): Promise<Identity | null> {
  if (header === undefined || header === null || header.trim() === "") return null;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (!match) throw UnauthenticatedError.because("the Authorization header must be `Bearer <token>`");
  const token = match[1];
  if (token.startsWith(API_TOKEN_PREFIX)) return deps.verifyApiToken(token);
  if (!deps.verifyOidcToken) throw UnauthenticatedError.because("the token is not an API token and no identity provider is configured");
  return deps.verifyOidcToken(token);
}
