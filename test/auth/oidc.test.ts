/**
 * OIDC access tokens against a real OpenID Provider (oidc-provider, client credentials, JWT access
 * tokens for one resource), served on 127.0.0.1 port 0. Tokens the provider will not issue
 * (expired, wrong audience, `alg: none`, …) are signed here with jose, with the provider's own key.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from "jose";
import Provider from "oidc-provider";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOidcVerifier, type OidcVerifier, resolveBearer } from "../../src/auth/index.js";
import { AppError } from "../../src/kernel/index.js";
import { withTimeout } from "../support/wait.js";

const test = suite("auth: OIDC access tokens");

const AUDIENCE = "https://fem.test/api";
const CLIENT_ID = "fem-test-service";
const CLIENT_SECRET = "a-client-secret-only-for-this-test";
const WAIT_MS = 5_000;

interface SigningKey {
  kid: string;
  privateJwk: JWK;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

let server: Server;
let issuer: string;
let current: Provider;
let jwksRequests = 0;
let failDiscoveries = 0;
let keyA: SigningKey;
let keyB: SigningKey;
const verifiers: OidcVerifier[] = [];

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  return { kid, privateKey, publicKey, privateJwk: { ...(await exportJWK(privateKey)), kid, alg: "RS256", use: "sig" } };
}

/** A provider that publishes only `key`; swapping it in behind the same issuer is a key rotation. */
function provider(key: SigningKey): Provider {
  const op = new Provider(issuer, {
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, grant_types: ["client_credentials"], redirect_uris: [], response_types: [] }],
    jwks: { keys: [key.privateJwk] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ audience: AUDIENCE, scope: "api", accessTokenFormat: "jwt", accessTokenTTL: 300, jwt: { sign: { alg: "RS256" } } }),
      },
    },
    ttl: { ClientCredentials: 300 },
    extraTokenClaims: () => ({ name: "Nightly pipeline", realm_access: { roles: ["NODE_OPERATOR", "offline_access"] } }),
  });
  // The provider logs each failed request; the failures here are deliberate.
  op.on("server_error", () => undefined);
  return op;
}

/** A JWT access token from the provider's token endpoint (client credentials grant). */
async function issuedToken(): Promise<string> {
  const response = await withTimeout(
    fetch(`${issuer}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: CLIENT_ID, client_secret: CLIENT_SECRET, resource: AUDIENCE, scope: "api" }),
    }),
    WAIT_MS,
    "the token endpoint",
  );
  const body = (await response.json()) as { access_token?: string; error?: string; error_description?: string };
  assert.ok(body.access_token, `no access token: ${body.error} ${body.error_description}`);
  assert.is(body.access_token!.split(".").length, 3, "the access token is a JWT");
  return body.access_token!;
}

/** A token signed here with `key`; `claims` override a valid set. */
async function signed(key: SigningKey, claims: Record<string, unknown> = {}): Promise<string> {
  const nowSeconds = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: issuer, aud: AUDIENCE, sub: "alice", iat: nowSeconds, exp: nowSeconds + 300, ...claims })
    .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "at+jwt" })
    .sign(key.privateKey);
}

function verifier(options: Partial<Parameters<typeof createOidcVerifier>[0]> = {}): OidcVerifier {
  const created = createOidcVerifier({ issuerUrl: issuer, audience: AUDIENCE, rolesClaim: "realm_access.roles", fetchTimeoutMs: 2_000, jwksCooldownMs: 0, ...options });
  verifiers.push(created);
  return created;
}

async function refusal(promise: Promise<unknown>): Promise<AppError> {
  try {
    await withTimeout(promise, WAIT_MS, "the verdict");
  } catch (error) {
    assert.instance(error, AppError, `not an AppError: ${String(error)}`);
    return error as AppError;
  }
  throw new assert.Assertion({ message: "the token was accepted", operator: "rejects", expects: "a rejection", actual: "an identity" });
}

async function assertRefused(promise: Promise<unknown>, reason: RegExp): Promise<void> {
  const error = await refusal(promise);
  assert.is(error.code, "UNAUTHENTICATED");
  assert.match(error.message, reason);
}

const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

test.before(async () => {
  server = createServer((req, res) => {
    if (req.url?.startsWith("/jwks")) jwksRequests += 1;
    if (req.url === "/.well-known/openid-configuration" && failDiscoveries > 0) {
      failDiscoveries -= 1;
      res.writeHead(503).end();
      return;
    }
    current.callback()(req, res);
  });
  await withTimeout(new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve)), WAIT_MS, "the provider to listen");
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  [keyA, keyB] = await Promise.all([signingKey("key-a"), signingKey("key-b")]);
  current = provider(keyA);
});

test.after(async () => {
  for (const v of verifiers) v.stop();
  server.closeAllConnections();
  await withTimeout(new Promise<void>((resolve) => server.close(() => resolve())), WAIT_MS, "the provider to close");
});

test("accepts an access token the provider issued, with roles from the configured claim", async () => {
  const { expiresAt, ...identity } = await withTimeout(verifier().verify(await issuedToken()), WAIT_MS, "verification");
  assert.equal(identity, { subject: CLIENT_ID, name: "Nightly pipeline", email: null, roles: ["NODE_OPERATOR"], via: "oidc" });
  assert.ok(expiresAt && expiresAt.getTime() > Date.now(), "the identity carries the token's exp");
});

test("reads name, email and a top-level roles claim by the names configured", async () => {
  const token = await signed(keyA, { preferred_username: "Alice A.", mail: "alice@example.org", groups: "ADMIN unrelated" });
  const identity = await verifier({ nameClaim: "preferred_username", emailClaim: "mail", rolesClaim: "groups" }).verify(token);
  const exp = (JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8")) as { exp: number }).exp;
  assert.equal(identity, { subject: "alice", name: "Alice A.", email: "alice@example.org", roles: ["ADMIN"], via: "oidc", expiresAt: new Date(exp * 1_000) });
});

test("resolves a bearer header that is not an API token through the OIDC verifier", async () => {
  const v = verifier();
  const deps = { verifyApiToken: () => Promise.reject(new Error("not an API token")), verifyOidcToken: (t: string) => v.verify(t) };
  const identity = await resolveBearer(`Bearer ${await issuedToken()}`, deps);
  assert.is(identity?.via, "oidc");
  assert.is(identity?.subject, CLIENT_ID);
});

test("refuses an expired token, and accepts one expired within the leeway", async () => {
  const nowSeconds = Math.floor(Date.now() / 1000);
  await assertRefused(verifier().verify(await signed(keyA, { iat: nowSeconds - 600, exp: nowSeconds - 120 })), /has expired/);
  const identity = await verifier().verify(await signed(keyA, { iat: nowSeconds - 600, exp: nowSeconds - 10 }));
  assert.is(identity.subject, "alice");
});

test("refuses a token that is not yet valid (nbf)", async () => {
  const nowSeconds = Math.floor(Date.now() / 1000);
  await assertRefused(verifier().verify(await signed(keyA, { nbf: nowSeconds + 120 })), /not yet valid/);
});

test("refuses a token meant for another audience", async () => {
  await assertRefused(verifier().verify(await signed(keyA, { aud: "https://other.example/api" })), /another audience/);
});

test("refuses a token from another issuer, even signed with the right key", async () => {
  await assertRefused(verifier().verify(await signed(keyA, { iss: "https://evil.example" })), /another issuer/);
});

test("refuses a token without a subject", async () => {
  await assertRefused(verifier().verify(await signed(keyA, { sub: undefined })), /no "sub" claim/);
});

test("refuses an unsigned token (alg: none)", async () => {
  const nowSeconds = Math.floor(Date.now() / 1000);
  const token = `${base64url({ alg: "none", typ: "JWT" })}.${base64url({ iss: issuer, aud: AUDIENCE, sub: "mallory", iat: nowSeconds, exp: nowSeconds + 300 })}.`;
  const error = await refusal(verifier().verify(token));
  assert.is(error.code, "UNAUTHENTICATED");
  assert.not.match(error.message, token, "the message does not echo the token");
});

test("refuses HS256 with the provider's public key as the HMAC secret (algorithm confusion)", async () => {
  const publicPem = await exportSPKI(keyA.publicKey);
  const token = await new SignJWT({ iss: issuer, aud: AUDIENCE, sub: "mallory" })
    .setProtectedHeader({ alg: "HS256", kid: keyA.kid })
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(publicPem));
  await assertRefused(verifier().verify(token), /algorithm is not allowed/);
  assert.throws(() => createOidcVerifier({ issuerUrl: issuer, audience: AUDIENCE, algorithms: ["RS256", "HS256"] }), /refusing HS256/);
  assert.throws(() => createOidcVerifier({ issuerUrl: issuer, audience: AUDIENCE, algorithms: ["none"] }), /refusing none/);
});

test("refuses a token whose signature does not verify", async () => {
  const token = await signed(keyA);
  const [header, payload] = token.split(".");
  const forged = `${header}.${base64url({ ...JSON.parse(Buffer.from(payload, "base64url").toString()), sub: "root" })}.${token.split(".")[2]}`;
  await assertRefused(verifier().verify(forged), /signature does not verify/);
});

test("refuses a malformed token without echoing it", async () => {
  const error = await refusal(verifier().verify("not-a-jwt-secret-value"));
  assert.is(error.code, "UNAUTHENTICATED");
  assert.not.match(error.message, "not-a-jwt-secret-value");
});

test("follows a key rotation: a new key is fetched on its unknown kid, a removed key is refused after a refetch", async () => {
  const v = verifier();
  const oldToken = await issuedToken();
  assert.is((await v.verify(oldToken)).subject, CLIENT_ID);

  current = provider(keyB);
  const newToken = await issuedToken();
  const before = jwksRequests;
  assert.is((await withTimeout(v.verify(newToken), WAIT_MS, "verification after rotation")).subject, CLIENT_ID);
  assert.ok(jwksRequests > before, "the key set was fetched again for the unknown kid");

  const beforeOld = jwksRequests;
  await assertRefused(v.verify(oldToken), /key the issuer does not publish/);
  assert.ok(jwksRequests > beforeOld, "the key set was fetched again before refusing");
  current = provider(keyA);
});

test("a failed discovery is UNAVAILABLE and tried again on the next token", async () => {
  failDiscoveries = 1;
  const v = verifier();
  const token = await signed(keyA);
  const error = await refusal(v.verify(token));
  assert.is(error.code, "UNAVAILABLE");
  assert.match(error.message, /discovery document .* could not be read: HTTP 503/);
  assert.is((await withTimeout(v.verify(token), WAIT_MS, "verification after the failure")).subject, "alice");
});

test("reports an unreachable identity provider as UNAVAILABLE within the fetch timeout", async () => {
  const silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  try {
    const started = Date.now();
    const v = verifier({ issuerUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, fetchTimeoutMs: 300 });
    const error = await refusal(v.verify(await signed(keyA)));
    assert.is(error.code, "UNAVAILABLE");
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  } finally {
    silent.closeAllConnections();
    await withTimeout(new Promise<void>((resolve) => silent.close(() => resolve())), WAIT_MS, "the silent server to close");
  }
});

test.run();
