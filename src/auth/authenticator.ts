/** One instance's way of turning a bearer token into an identity: API tokens always, OIDC when configured. */
import type { MikroORM } from "@mikro-orm/postgresql";
import { translateDbError } from "../db/sql.js";
import { UnauthenticatedError } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { toError } from "../shared/index.js";
import { recheckApiToken, verifyApiToken } from "./api-token.service.js";
import { resolveBearer } from "./bearer.js";
import type { Identity } from "./identity.js";
import { createOidcVerifier, type OidcVerifier, type OidcVerifierOptions } from "./oidc.js";
import { rememberUser } from "./user.service.js";

export interface Authenticator {
  /** The caller behind an `Authorization` header value; null without one; rejects with UNAUTHENTICATED. */
  authenticate(header: string | null | undefined): Promise<Identity | null>;
  /**
   * Checks again an identity `authenticate` returned earlier (an open WebSocket's, at each
   * subscribe): UNAUTHENTICATED when it has expired or its API token was revoked. Cheap: no
   * signature check, at most one primary-key read.
   */
  recheck(identity: Identity, now?: Date): Promise<void>;
  stop(): void;
}

/** How often an OIDC caller's user record is refreshed, at most. */
const REMEMBER_EVERY_MS = 60_000;

export function createAuthenticator(orm: MikroORM, oidc: OidcVerifierOptions | null, logger: Logger): Authenticator {
  const verifier: OidcVerifier | null = oidc ? createOidcVerifier(oidc) : null;
  const remembered = new Map<string, number>();

  function remember(identity: Identity): void {
    const last = remembered.get(identity.subject) ?? 0;
    if (Date.now() - last < REMEMBER_EVERY_MS) return;
    remembered.set(identity.subject, Date.now());
    if (remembered.size > 10_000) remembered.clear();
    rememberUser(orm.em.fork(), identity).catch((err: unknown) => logger.warn("could not record a user", { subject: identity.subject, error: toError(err).message }));
  }

  return {
    async authenticate(header) {
      const identity = await resolveBearer(header, {
        // A database outage is UNAVAILABLE (try again), not an unknown token.
        verifyApiToken: (token) => verifyApiToken(orm.em.fork(), token).catch((err: unknown) => Promise.reject(translateDbError(err))),
        verifyOidcToken: verifier ? (token) => verifier.verify(token) : undefined,
      });
      if (identity?.via === "oidc") remember(identity);
      return identity;
    },
    async recheck(identity, now = new Date()) {
      if (identity.expiresAt && identity.expiresAt.getTime() <= now.getTime()) throw UnauthenticatedError.because("the token has expired");
      if (identity.apiTokenId) await recheckApiToken(orm.em.fork(), identity.apiTokenId, now);
    },
    stop() {
      verifier?.stop();
    },
  };
}
