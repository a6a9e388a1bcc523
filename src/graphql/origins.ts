/**
 * Which browser pages may call the API: the WebSocket upgrade and CORS on `/graphql` both follow
 * one list of origins (`FEM_ALLOWED_ORIGINS`), matched exactly as scheme://host[:port].
 */
import type http from "node:http";

export interface OriginPolicy {
  /**
   * May a WebSocket upgrade with this `Origin` go on? Yes without an Origin (CLI, notebooks: not a
   * browser), for a listed origin, and for the server's own host (`host` is the Host header).
   */
  allowsUpgrade(origin: string | undefined, host: string | undefined): boolean;
  /** Is this exactly a listed origin? Only these get CORS headers. */
  isListed(origin: string | undefined): boolean;
}

/** Headers a cross-origin caller may send; the API reads only these two. */
const ALLOWED_HEADERS = "authorization, content-type";
/** Headers a cross-origin page may read: the request id and the rate limit's Retry-After. */
const EXPOSED_HEADERS = "x-request-id, retry-after";
/** How long a browser may cache a preflight answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** `scheme://host[:port]` with the default port dropped and the host lower-cased, or null when `value` is not an http(s) origin (e.g. `null`). */
export function normalizeOrigin(value: string | undefined): string | null {
  if (!value) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (url.username || url.password || url.pathname !== "/" || url.search || url.hash) return null;
  return url.origin;
}

export function createOriginPolicy(allowedOrigins: readonly string[]): OriginPolicy {
  const listed = new Set(allowedOrigins.map((o) => normalizeOrigin(o)).filter((o): o is string => o !== null));
  const isListed = (origin: string | undefined): boolean => {
    const normalized = normalizeOrigin(origin);
    return normalized !== null && listed.has(normalized);
  };
  return {
    isListed,
    allowsUpgrade(origin, host) {
      if (origin === undefined) return true;
      if (isListed(origin)) return true;
      return isSameOrigin(origin, host);
    },
  };
}

/** True when `origin` names the host the request was sent to (the page was served by this server). */
function isSameOrigin(origin: string, host: string | undefined): boolean {
  const normalized = normalizeOrigin(origin);
  if (!normalized || !host) return false;
  try {
    // Read the Host header with the origin's scheme, so its default port is dropped the same way.
    return new URL(`${new URL(normalized).protocol}//${host}`).origin === normalized;
  } catch {
    return false;
  }
}

/**
 * CORS for one `/graphql` request: a listed origin gets `Access-Control-Allow-Origin` (every
 * response varies by Origin). Answers an `OPTIONS` preflight itself (204 for a listed origin,
 * 403 without CORS headers otherwise) and returns true when it did.
 */
export function applyCors(req: http.IncomingMessage, res: http.ServerResponse, policy: OriginPolicy): boolean {
  const origin = req.headers.origin;
  res.setHeader("vary", "Origin");
  const listed = policy.isListed(origin);
  if (listed) {
    res.setHeader("access-control-allow-origin", origin!);
    res.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
  }
  if (req.method !== "OPTIONS") return false;
  req.resume();
  if (listed) {
    res.writeHead(204, {
      "access-control-allow-methods": "GET, POST, OPTIONS",
      "access-control-allow-headers": ALLOWED_HEADERS,
      "access-control-max-age": String(PREFLIGHT_MAX_AGE_SECONDS),
    });
    res.end();
  } else {
    res.writeHead(403, { "content-type": "text/plain" });
    res.end("origin not allowed\n");
  }
  return true;
}
