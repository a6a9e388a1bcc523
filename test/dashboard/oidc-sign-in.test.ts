/**
 * Signing in to the dashboard through a real OpenID Provider (oidc-provider with its development
 * login pages) in a real browser: authorization code with PKCE for the dashboard's public client,
 * an access token for the API's audience, kept in session storage and used on both transports.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import Provider from "oidc-provider";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { launchBrowser, type TestBrowser } from "../support/browser.js";
import { withTimeout } from "../support/wait.js";

const test = suite("dashboard: sign-in through an OpenID Provider");
const AUDIENCE = "https://fem.test/api";
const CLIENT_ID = "fem-dashboard";
let env: TestEnv;
let browser: TestBrowser;
let server: Server;
let issuer: string;
let provider: Provider | null = null;

test.before(async () => {
  server = createServer((req, res) => {
    if (!provider) return void res.writeHead(503).end();
    provider.callback()(req, res);
  });
  await withTimeout(new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve)), 5_000, "the provider to listen");
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  env = await createTestEnv({
    oidc: { issuerUrl: issuer, audience: AUDIENCE, rolesClaim: null, subjectClaim: "sub", nameClaim: "name", emailClaim: "email", dashboardClientId: CLIENT_ID },
  });
  // The client's redirect URI is the dashboard's own origin, known once the orchestrator listens.
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  provider = new Provider(issuer, {
    clients: [{ client_id: CLIENT_ID, token_endpoint_auth_method: "none", grant_types: ["authorization_code"], response_types: ["code"], redirect_uris: [`${new URL(env.orchestrator.url).origin}/`] }],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: "k1", alg: "RS256", use: "sig" }] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ audience: AUDIENCE, scope: "api", accessTokenFormat: "jwt", accessTokenTTL: 300, jwt: { sign: { alg: "RS256" } } }),
      },
    },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, name: `User ${sub}` }) }),
  });
  provider.on("server_error", () => undefined);
  browser = await launchBrowser();
});

test.after(async () => {
  await browser?.close();
  await env?.dispose();
  server?.closeAllConnections();
  if (server) await withTimeout(new Promise<void>((resolve) => server.close(() => resolve())), 5_000, "the provider to close");
});

test("signs in with authorization code + PKCE at the provider and uses its access token on both transports", async () => {
  const origin = new URL(env.orchestrator.url).origin;
  const page = await browser.newPage();
  // Only this machine: the provider's login page imports a web font from elsewhere.
  await page.route((url) => url.hostname !== "127.0.0.1", (route) => route.abort());
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(error.message));
  const authorizations: URL[] = [];
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.origin === issuer && url.pathname === "/auth") authorizations.push(url);
  });
  try {
    const config = await (await fetch(`${origin}/config.json`)).json();
    assert.equal(config, { oidc: { issuer, clientId: CLIENT_ID, audience: AUDIENCE } });
    await page.goto(`${origin}/`);
    await page.click("[data-testid=oidc-sign-in]");
    await page.waitForURL((url) => url.origin === issuer, { timeout: 15_000 });
    await page.fill("input[name=login]", "alice");
    await page.fill("input[name=password]", "anything");
    await page.click("button[type=submit]");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.locator("[data-testid=signed-in-as]", { hasText: "alice" }).waitFor({ timeout: 20_000 });
    assert.not.match(page.url(), /code=|state=/, "code and state are gone from the address bar");
    const token = (await page.evaluate("sessionStorage.getItem('fem.token')")) as string;
    assert.is(token.split(".").length, 3, "a JWT access token is kept for the tab");
    assert.is(await page.evaluate("sessionStorage.getItem('fem.oidc.pending')"), null, "the PKCE verifier is not kept");
    // The nodes page subscribes over WebSocket with the same token.
    await page.evaluate(`window.location.hash = '#/nodes'`);
    await page.locator("#nodes-title").waitFor();
    await page.waitForTimeout(500);
    assert.is(await page.locator("[role=alert]").count(), 0, "no error on the live page");
    assert.equal(problems, []);
    await browser.screenshot(page, "dashboard/oidc-signed-in");
    const sent = authorizations[0]?.searchParams;
    assert.ok(sent, "the page sent the browser to the authorization endpoint");
    assert.equal(
      [sent.get("client_id"), sent.get("response_type"), sent.get("code_challenge_method"), sent.get("resource"), sent.get("redirect_uri")],
      [CLIENT_ID, "code", "S256", AUDIENCE, `${origin}/`],
    );
    assert.ok((sent.get("code_challenge") ?? "").length >= 43, "a PKCE challenge");
  } finally {
    await page.close();
  }
});

test.run();
