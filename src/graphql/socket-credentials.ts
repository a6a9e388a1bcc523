/**
 * A WebSocket lives longer than the token it was opened with: the socket is closed with 4401 when
 * the token expires (a timer per socket), and the token is checked again at each subscribe (expiry,
 * revocation of an API token).
 */
import { UnauthenticatedError } from "../kernel/index.js";
import type { Identity } from "./context.js";

/** Close code when the socket's credential no longer holds; the client signs in again (graphql-ws's Unauthorized). */
export const CLOSE_UNAUTHORIZED = 4401;
export const TOKEN_EXPIRED = "token expired";
export const TOKEN_REVOKED = "token revoked";

/** Longest delay `setTimeout` keeps (about 24.8 days); a later expiry re-arms the timer. */
const MAX_TIMER_MS = 2_147_483_647;

export interface ExpiryTimer {
  /** Cancels the timer; safe to call twice. */
  clear(): void;
}

/** Calls `onExpired` once `expiresAt` has passed (soon after, when it already has). */
export function armExpiry(expiresAt: Date, onExpired: () => void): ExpiryTimer {
  let timer: NodeJS.Timeout | null = null;
  const arm = (): void => {
    const remainingMs = expiresAt.getTime() - Date.now();
    if (remainingMs <= 0) {
      timer = null;
      onExpired();
      return;
    }
    timer = setTimeout(arm, Math.min(remainingMs, MAX_TIMER_MS));
  };
  // Not in this call: the caller registers its own clean-up before the callback can run.
  timer = setTimeout(arm, 0);
  return {
    clear() {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

/** The part of the auth domain's Authenticator used here. */
export interface CredentialChecker {
  /** Rejects with UNAUTHENTICATED when `identity` no longer holds at `now`. */
  recheck(identity: Identity, now?: Date): Promise<void>;
}

/**
 * Why the socket of `identity` must close now (its close reason), or null while its credential
 * still holds. Throws what the authenticator throws besides UNAUTHENTICATED (e.g. the database is away).
 */
export async function credentialRefusal(authenticator: CredentialChecker, identity: Identity, now: Date = new Date()): Promise<string | null> {
  if (identity.expiresAt && identity.expiresAt.getTime() <= now.getTime()) return TOKEN_EXPIRED;
  try {
    await authenticator.recheck(identity, now);
    return null;
  } catch (err) {
    if (err instanceof UnauthenticatedError) return TOKEN_REVOKED;
    throw err;
  }
}
