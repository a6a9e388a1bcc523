import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseConfig } from "../../src/config.js";
import { contentSecurityPolicy, createDashboard } from "../../src/graphql/dashboard.js";

const test = suite("dashboard static files");
let dir: string;
let server: http.Server;
let base: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "fem-dashboard-"));
  await mkdir(join(dir, "assets"));
  await writeFile(join(dir, "index.html"), "<!doctype html><div id=root></div>");
  await writeFile(join(dir, "assets", "index-AbCdEf12.js"), "console.log(1)");
  await writeFile(join(dir, "notes.unknown"), "not served: no known type");
  const dashboard = createDashboard(dir);
  server = http.createServer((req, res) => {
    if (!dashboard.handle(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test("serves index.html at / with no-cache and the safety headers", async () => {
  const res = await fetch(`${base}/`);
  assert.is(res.status, 200);
  assert.is(res.headers.get("content-type"), "text/html; charset=utf-8");
  assert.is(res.headers.get("cache-control"), "no-cache");
  assert.is(res.headers.get("x-content-type-options"), "nosniff");
  assert.is(res.headers.get("referrer-policy"), "no-referrer");
  assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self';/);
});

test("caches hashed assets for a year, and serves nothing it did not load at start", async () => {
  const asset = await fetch(`${base}/assets/index-AbCdEf12.js`);
  assert.is(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
  await writeFile(join(dir, "late.js"), "added after start");
  for (const path of ["/late.js", "/notes.unknown", "/%2e%2e/%2e%2e/etc/passwd", "/index.html/"]) {
    assert.is((await fetch(`${base}${path}`)).status, 404, path);
  }
  assert.is((await fetch(`${base}/`, { method: "POST" })).status, 404, "only GET and HEAD");
});

test("answers 503 at / when the dashboard is not built", async () => {
  const empty = createDashboard(join(dir, "missing"));
  assert.is(empty.built, false);
  let status = 0;
  const res = { setHeader() {}, writeHead(code: number) { status = code; }, end() {} } as unknown as http.ServerResponse;
  assert.ok(empty.handle({ method: "GET", url: "/", headers: {} } as http.IncomingMessage, res));
  assert.is(status, 503);
});

test("names ws and wss of the page's host in connect-src, and only a well-formed host", () => {
  assert.match(contentSecurityPolicy("127.0.0.1:4000"), /connect-src 'self' ws:\/\/127\.0\.0\.1:4000 wss:\/\/127\.0\.0\.1:4000;/);
  assert.match(contentSecurityPolicy("[::1]:4000"), /ws:\/\/\[::1\]:4000/);
  assert.match(contentSecurityPolicy("evil; script-src *"), /connect-src 'self';/);
  assert.match(contentSecurityPolicy(undefined), /connect-src 'self';/);
});

test("FEM_DASHBOARD turns the dashboard off; it is on by default", () => {
  const on = parseConfig({});
  const off = parseConfig({ FEM_DASHBOARD: "false", FEM_DASHBOARD_DIR: "/srv/dashboard" });
  assert.ok(on.ok && off.ok);
  if (!on.ok || !off.ok) return;
  assert.is(on.config.dashboard, true);
  assert.is(off.config.dashboard, false);
  assert.is(off.config.dashboardDir, "/srv/dashboard");
});

test("tells the page at /config.json how to sign in: nothing without an identity provider; with one, its issuer in connect-src", async () => {
  const none = await fetch(`${base}/config.json`);
  assert.is(none.status, 200);
  assert.is(none.headers.get("cache-control"), "no-cache");
  assert.equal(await none.json(), { oidc: null });
  const signIn = { issuer: "https://login.example.org/realms/fem", clientId: "fem-dashboard", audience: "https://fem.example.org/api" };
  const withProvider = createDashboard(dir, signIn);
  let body = "";
  const headers: Record<string, string> = {};
  const res = {
    setHeader(name: string, value: string) { headers[name] = value; },
    writeHead() {},
    end(chunk?: Buffer) { body = chunk?.toString() ?? ""; },
  } as unknown as http.ServerResponse;
  assert.ok(withProvider.handle({ method: "GET", url: "/config.json", headers: { host: "127.0.0.1:4000" } } as http.IncomingMessage, res));
  assert.equal(JSON.parse(body), { oidc: signIn });
  assert.match(headers["content-security-policy"], /connect-src 'self' ws:\/\/127\.0\.0\.1:4000 wss:\/\/127\.0\.0\.1:4000 https:\/\/login\.example\.org;/);
});

test("FEM_OIDC_DASHBOARD_CLIENT_ID names the dashboard's public client; none by default", () => {
  const base = { FEM_OIDC_ISSUER: "https://login.example.org/realms/fem", FEM_OIDC_AUDIENCE: "https://fem.example.org/api" };
  const without = parseConfig(base);
  const withClient = parseConfig({ ...base, FEM_OIDC_DASHBOARD_CLIENT_ID: "fem-dashboard" });
  assert.ok(without.ok && withClient.ok);
  if (!without.ok || !withClient.ok) return;
  assert.is(without.config.oidc?.dashboardClientId, null);
  assert.is(withClient.config.oidc?.dashboardClientId, "fem-dashboard");
  assert.not.ok(parseConfig({ ...base, FEM_OIDC_DASHBOARD_CLIENT_ID: "has space" }).ok);
});

test.run();
