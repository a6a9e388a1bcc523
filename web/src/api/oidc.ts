/**
 * Signing in through the site's OpenID Provider: authorization code with PKCE (oauth4webapi), as a
 * public client. The page learns the issuer and client id from /config.json; the verifier and state
 * wait in session storage while the browser is at the provider; the access token it brings back is
 * then kept like a pasted API token (session storage, this tab only).
 */
import * as oauth from "oauth4webapi";
import type { SignInConfig } from "./sign-in-config";

const PENDING_KEY = "fem.oidc.pending";
const SCOPE = "openid";

/** The page itself, without query or hash: the redirect URI registered for the dashboard's client. */
function redirectUri(): string {
  return `${window.location.origin}/`;
}

/** Plain http only for an issuer on this machine (development and tests); oauth4webapi refuses it otherwise. */
function requestOptions(issuer: URL): { [oauth.allowInsecureRequests]?: boolean } {
  const local = issuer.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(issuer.hostname);
  return local ? { [oauth.allowInsecureRequests]: true } : {};
}

async function discover(config: SignInConfig): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(config.issuer);
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oidc", ...requestOptions(issuer) }));
}

/** Sends the browser to the provider's sign-in page. */
export async function startSignIn(config: SignInConfig): Promise<void> {
  const server = await discover(config);
  if (!server.authorization_endpoint) throw new Error(`${config.issuer} names no authorization endpoint`);
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(server.authorization_endpoint);
  url.searchParams.set("client_id", config.clientId);
  url.searchParams.set("redirect_uri", redirectUri());
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", SCOPE);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set("code_challenge_method", "S256");
  url.searchParams.set("state", state);
  url.searchParams.set("resource", config.audience);
  window.location.assign(url.href);
}

/**
 * Trades the code in the page's URL for an access token, then removes code and state from the
 * address bar. Rejects with the provider's error description when it refused.
 */
export async function finishSignIn(config: SignInConfig): Promise<string> {
  const current = new URL(window.location.href);
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? "null") as { verifier: string; state: string } | null;
  sessionStorage.removeItem(PENDING_KEY);
  window.history.replaceState(null, "", `${current.pathname}${current.hash}`);
  if (!pending) throw new Error("This sign-in was not started in this tab; start again.");
  const server = await discover(config);
  const client: oauth.Client = { client_id: config.clientId };
  try {
    const params = oauth.validateAuthResponse(server, client, current, pending.state);
    const response = await oauth.authorizationCodeGrantRequest(server, client, oauth.None(), params, redirectUri(), pending.verifier, {
      additionalParameters: { resource: config.audience },
      ...requestOptions(new URL(config.issuer)),
    });
    const result = await oauth.processAuthorizationCodeResponse(server, client, response);
    return result.access_token;
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError || err instanceof oauth.ResponseBodyError) throw new Error(err.error_description || err.error);
    throw err;
  }
}
