/** Turning jose's verification failures into the error catalogue, with a reason a caller can act on. */
import { errors } from "jose";
import { type AppError, UnauthenticatedError, UnavailableError } from "../kernel/index.js";
import { toError } from "../shared/index.js";

const CLAIM_REASONS: Record<string, string> = {
  nbf: "the token is not yet valid",
  iss: "the token was issued by another issuer",
  aud: "the token is meant for another audience",
  exp: "the token has no expiry",
};

/** UNAUTHENTICATED for a token that fails a check, UNAVAILABLE when the key set could not be fetched; never echoes the token. */
export function explainJoseError(thrown: unknown): AppError {
  const error = toError(thrown);
  if (error instanceof errors.JWTExpired) return UnauthenticatedError.because("the token has expired", error);
  if (error instanceof errors.JWTClaimValidationFailed) {
    return UnauthenticatedError.because(CLAIM_REASONS[error.claim] ?? `the token's "${error.claim}" claim is invalid (${error.reason})`, error);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return UnauthenticatedError.because("the token's signature algorithm is not allowed", error);
  if (error instanceof errors.JWKSNoMatchingKey) return UnauthenticatedError.because("the token was signed with a key the issuer does not publish", error);
  if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSMultipleMatchingKeys) {
    return UnauthenticatedError.because("the token's signature does not verify", error);
  }
  if (error instanceof errors.JWKSTimeout) return new UnavailableError("the identity provider's key set did not arrive in time", error);
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return UnauthenticatedError.because("the token is not a well-formed signed JWT", error);
  }
  // Left: the key set answered with an error status or was not a JWKS, or the fetch itself failed.
  return new UnavailableError(`the identity provider's key set could not be used: ${error.message}`, error);
}
