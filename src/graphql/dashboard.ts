/**
 * The dashboard's static files (web/dist, built by `npm run build`), served at `/` on the API's own
 * port. The files are read once at start into memory: a request can only name one of them, so no
 * path from a request ever reaches the file system.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import type http from "node:http";
import { extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** web/dist of this checkout, seen from dist/src/graphql/ (where this module runs from). */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL("../../../web/dist/", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

/** Vite names what it builds `assets/<name>-<hash>.<ext>`: only these may be cached for long. */
const HASHED_ASSET = /^\/assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;
const YEAR_SECONDS = 31_536_000;
/** A Host header we are willing to repeat in the policy (host, IPv4, [IPv6], optional port). */
const SAFE_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** What the page needs to sign in through the site's identity provider (all public: no secret). */
export interface DashboardSignIn {
  issuer: string;
  /** A public client registered for the dashboard: authorization code with PKCE, redirect URI `<origin>/`. */
  clientId: string;
  /** The API's audience, asked for as the access token's resource (RFC 8707). */
  audience: string;
}

/** Where the page reads how to sign in: `{ "oidc": DashboardSignIn | null }`, public like the page itself. */
export const CONFIG_PATH = "/config.json";

interface StaticFile {
  body: Buffer;
  contentType: string;
}

export interface Dashboard {
  /** Whether the built files were found (false: `/` answers 503 saying how to build them). */
  built: boolean;
  /** Answers GET/HEAD outside `/graphql`; returns false when the request is not its to answer. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

function loadFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let paths: string[];
  try {
    paths = listFiles(dir);
  } catch {
    return files;
  }
  for (const path of paths) {
    const contentType = CONTENT_TYPES[extname(path).toLowerCase()];
    if (!contentType) continue;
    files.set(`/${relative(dir, path).split(sep).join("/")}`, { body: readFileSync(path), contentType });
  }
  return files;
}

/**
 * The page may load scripts, styles and images only from this server and talk only to it (HTTP
 * and WebSocket); nothing inline, no frames, no plugins. `'self'` covers ws(s) to the same host in
 * current browsers; the explicit ws/wss source is for older ones.
 */
export function contentSecurityPolicy(host: string | undefined, issuer: string | null = null): string {
  const sockets = host && SAFE_HOST.test(host) ? ` ws://${host} wss://${host}` : "";
  // Signing in fetches the issuer's discovery document and token endpoint from the page.
  const provider = issuer ? ` ${new URL(issuer).origin}` : "";
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${sockets}${provider}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

export function createDashboard(dir: string, signIn: DashboardSignIn | null = null): Dashboard {
  const files = loadFiles(dir);
  const index = files.get("/index.html");
  files.set(CONFIG_PATH, { body: Buffer.from(JSON.stringify({ oidc: signIn })), contentType: CONTENT_TYPES[".json"] });
  return {
    built: index !== undefined,
    handle(req, res) {
      if (req.method !== "GET" && req.method !== "HEAD") return false;
      const pathname = new URL(req.url ?? "/", "http://localhost").pathname;
      // The app routes with the hash (#/workflows/…), so only `/` and its own files exist.
      const file = pathname === "/" ? index : files.get(pathname);
      if (pathname !== "/" && !file) return false;
      res.setHeader("x-content-type-options", "nosniff");
      res.setHeader("referrer-policy", "no-referrer");
      res.setHeader("content-security-policy", contentSecurityPolicy(req.headers.host, signIn?.issuer ?? null));
      res.setHeader("cross-origin-opener-policy", "same-origin");
      if (!file) {
        res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
        res.end(`The dashboard is not built: run \`npm run build\` (it looks in ${dir}).\n`);
        return true;
      }
      const cacheControl = HASHED_ASSET.test(pathname) ? `public, max-age=${YEAR_SECONDS}, immutable` : "no-cache";
      res.writeHead(200, { "content-type": file.contentType, "content-length": String(file.body.length), "cache-control": cacheControl });
      res.end(req.method === "HEAD" ? undefined : file.body);
      return true;
    },
  };
}
