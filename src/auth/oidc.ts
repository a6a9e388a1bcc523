/**
 * Verifying OIDC access tokens (signed JWTs) against the issuer's published keys, with the checks
 * RFC 8725 asks for: an allow-list of asymmetric algorithms, issuer, audience, exp and nbf.
 */
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from "jose";
import { UnauthenticatedError, UnavailableError } from "../kernel/index.js";
import { toError } from "../shared/index.js";
import { rolesClaim, stringClaim } from "./claims.js";
import type { Identity } from "./identity.js";
import { explainJoseError } from "./oidc-errors.js";

export interface OidcVerifierOptions {
  /** The issuer exactly as the provider names itself in `iss` and in its discovery document. */
  issuerUrl: string;
  /** The audience (`aud`) a token must name, e.g. this API's resource indicator or client id. */
  audience: string;
  /** Leeway for exp and nbf. @default 30 */
  clockToleranceSeconds?: number;
  /** Accepted signature algorithms; `none` and HS* are refused when the verifier is created. @default ["RS256", "PS256", "ES256", "EdDSA"] */
  algorithms?: string[];
  /** @default "sub" */
  userClaim?: string;
  /** @default "name" */
  nameClaim?: string;
  /** @default "email" */
  emailClaim?: string;
  /** Dotted path of the claim listing global roles (`realm_access.roles` for Keycloak); none when unset. */
  rolesClaim?: string;
  /** Bound on the discovery request and on each key set request. @default 5_000 // 5 seconds */
  fetchTimeoutMs?: number;
  /** How long a fetched key set is trusted before it is fetched again. @default 600_000 // 10 minutes */
  jwksCacheMaxAgeMs?: number;
  /** Least time between two key set fetches caused by an unknown `kid`. @default 30_000 // 30 seconds */
  jwksCooldownMs?: number;
}

export interface OidcVerifier {
  /** The caller behind `token`; rejects with UNAUTHENTICATED saying why, or UNAVAILABLE when the issuer cannot be reached. */
  verify(token: string): Promise<Identity>;
  /** Aborts a discovery request in flight; later calls to `verify` reject. Safe to call twice. */
  stop(): void;
}

const DEFAULT_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"];

export function createOidcVerifier(options: OidcVerifierOptions): OidcVerifier {
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
  const refused = algorithms.filter((alg) => alg.toLowerCase() === "none" || /^HS/i.test(alg));
  if (refused.length > 0) throw new Error(`OIDC algorithms must be asymmetric; refusing ${refused.join(", ")}`);
  if (algorithms.length === 0) throw new Error("OIDC algorithms: name at least one");
  const issuer = options.issuerUrl;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 5_000;
  const userClaim = options.userClaim ?? "sub";
  const stopping = new AbortController();
  let discovered: Promise<JWTVerifyGetKey> | null = null;

  const discover = async (): Promise<JWTVerifyGetKey> => {
    const jwksUri = await fetchJwksUri(issuer, fetchTimeoutMs, stopping.signal);
    return createRemoteJWKSet(jwksUri, {
      timeoutDuration: fetchTimeoutMs,
      cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
    });
  };

  // The discovery document is read once; a failure is forgotten so the next call tries again.
  // Keys are refreshed by jose's remote key set (cacheMaxAge, and on an unknown kid).
  const currentKeys = async (): Promise<JWTVerifyGetKey> => {
    discovered ??= discover().catch((error: unknown) => {
      discovered = null;
      throw error;
    });
    return discovered;
  };

  return {
    async verify(token: string): Promise<Identity> {
      if (stopping.signal.aborted) throw new UnavailableError("the OIDC verifier is stopped");
      const keys = await currentKeys();
      let claims: Record<string, unknown>;
      try {
        ({ payload: claims } = await jwtVerify(token, keys, {
          issuer,
          audience: options.audience,
          algorithms,
          clockTolerance: options.clockToleranceSeconds ?? 30,
          requiredClaims: ["exp"],
        }));
      } catch (error) {
        throw explainJoseError(error);
      }
      const subject = stringClaim(claims, userClaim);
      if (!subject) throw UnauthenticatedError.because(`the token has no "${userClaim}" claim naming the user`);
      return {
        subject,
        name: stringClaim(claims, options.nameClaim ?? "name"),
        email: stringClaim(claims, options.emailClaim ?? "email"),
        roles: rolesClaim(claims, options.rolesClaim),
        via: "oidc",
        // `exp` is required above; jose has checked it is a number.
        expiresAt: new Date((claims.exp as number) * 1_000),
      };
    },
    stop(): void {
      stopping.abort();
    },
  };
}

/** Reads `jwks_uri` from the issuer's discovery document, which must name the same issuer (OpenID Connect Discovery §4.3). */
async function fetchJwksUri(issuer: string, timeoutMs: number, stopped: AbortSignal): Promise<URL> {
  const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  let document: { issuer?: unknown; jwks_uri?: unknown };
  try {
    const response = await fetch(url, { signal: AbortSignal.any([stopped, AbortSignal.timeout(timeoutMs)]), redirect: "error", headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    document = (await response.json()) as typeof document;
  } catch (error) {
    const reason = toError(error);
    throw new UnavailableError(`the identity provider's discovery document (${url}) could not be read: ${reason.message}`, reason);
  }
  if (document.issuer !== issuer) throw new UnavailableError(`the discovery document at ${url} names issuer ${JSON.stringify(document.issuer)}, not ${JSON.stringify(issuer)}`);
  if (typeof document.jwks_uri !== "string") throw new UnavailableError(`the discovery document at ${url} has no jwks_uri`);
  try {
    return new URL(document.jwks_uri);
  } catch (error) {
    throw new UnavailableError(`the discovery document at ${url} has an invalid jwks_uri`, error);
  }
}
