/**
 * Who is calling: OIDC access tokens and the orchestrator's own API tokens, both resolved to one
 * `Identity`. Not yet enforced on the API (the permission rules come with the next slice).
 */
export { ApiToken } from "./api-token.entity.js";
export { API_TOKEN_PREFIX, createApiToken, hasUsableApiToken, ensureBootstrapAdminToken, hashApiToken, listApiTokens, recheckApiToken, revokeApiToken, verifyApiToken, type NewApiToken } from "./api-token.service.js";
export { resolveBearer, type BearerDeps } from "./bearer.js";
export { GLOBAL_ROLES, isGlobalRole, type Identity, type IdentitySource } from "./identity.js";
export { createOidcVerifier, type OidcVerifier, type OidcVerifierOptions } from "./oidc.js";
export { User } from "./user.entity.js";
export { rememberUser } from "./user.service.js";
export { createAuthenticator, type Authenticator } from "./authenticator.js";
export { RoleGrant } from "./role-grant.entity.js";
export { grantedRolesOf, grantRole, loadViewer, revokeRole } from "./viewer.service.js";
export { AuthResolver } from "./auth.resolver.js";
