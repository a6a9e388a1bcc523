/**
 * `GET /artifacts/<id>` (and HEAD): streams an AVAILABLE artifact to a caller allowed to see its
 * run, with `Content-Length`, a strong `ETag` (its sha256), `Repr-Digest` (RFC 9530) and single
 * byte-range requests (RFC 9110: 206 with `Content-Range`, 416 when unsatisfiable, `If-Range`), so
 * an interrupted download resumes. Anonymous: 401; a run the caller may not see: 404.
 */
import type http from "node:http";
import { pipeline } from "node:stream/promises";
import type { MikroORM } from "@mikro-orm/postgresql";
import { loadViewer, type Identity } from "../auth/index.js";
import { AppError, UnauthenticatedError } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import { toError } from "../shared/index.js";
import type { ArtifactStore } from "./artifact-store.js";
import { downloadableArtifact } from "./artifact.service.js";

export interface DownloadDeps {
  orm: MikroORM;
  store: ArtifactStore;
  /** The caller behind an `Authorization` header; null when anonymous; rejects UNAUTHENTICATED or UNAVAILABLE. */
  authenticate(header: string | undefined): Promise<Identity | null>;
  /** Records a refused download of an anonymous caller or a refused token (the audit log). */
  onUnauthenticated?: (reason: string) => void;
  logger: Logger;
}

/** The byte range a `Range` header asks of a file of `sizeBytes`: null for the whole file, "unsatisfiable", or `[start, end]`. */
export function parseRange(header: string | undefined, sizeBytes: number): { start: number; end: number } | null | "unsatisfiable" {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges, or another unit: answered with the whole file, as RFC 9110 allows.
  if (!match || (match[1] === "" && match[2] === "")) return null;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0 || sizeBytes === 0) return "unsatisfiable";
    return { start: Math.max(0, sizeBytes - suffix), end: sizeBytes - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? sizeBytes - 1 : Math.min(Number(match[2]), sizeBytes - 1);
  if (start >= sizeBytes || end < start) return "unsatisfiable";
  return { start, end };
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

const STATUS_OF: Record<string, number> = { NOT_FOUND: 404, BAD_USER_INPUT: 404, UNAUTHENTICATED: 401, FORBIDDEN: 404, UNAVAILABLE: 503 };

/** Serves one request whose path is `/artifacts/<id>` (`id` as it is in the path). */
export async function serveArtifact(req: http.IncomingMessage, res: http.ServerResponse, id: string, deps: DownloadDeps): Promise<void> {
  const { logger } = deps;
  if (req.method !== "GET" && req.method !== "HEAD") return sendError(res, 405, "BAD_USER_INPUT", "only GET and HEAD", { allow: "GET, HEAD" });
  try {
    const identity = await deps.authenticate(req.headers.authorization);
    if (!identity) throw UnauthenticatedError.because("sign in: send Authorization: Bearer <token>");
    const em = deps.orm.em.fork();
    const viewer = await loadViewer(em, identity);
    const artifact = await downloadableArtifact(em, viewer, id);
    const file = await deps.store.open(artifact.id);
    if (!file || file.sizeBytes !== artifact.sizeBytes) {
      logger.error("an AVAILABLE artifact is missing from the store, or has another size", { artifactId: artifact.id, storedBytes: file?.sizeBytes ?? null });
      return sendError(res, 404, "NOT_FOUND", `artifact ${id} is not in the store`);
    }
    const sha256 = artifact.sha256!;
    const etag = `"sha256-${sha256}"`;
    const name = artifact.path.split("/").pop()!.replace(/[^\w.-]/g, "_");
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "content-disposition": `attachment; filename="${name}"`,
      "accept-ranges": "bytes",
      etag,
      "repr-digest": `sha-256=:${Buffer.from(sha256, "hex").toString("base64")}:`,
      "cache-control": "private, no-transform",
    };
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, headers);
      return void res.end();
    }
    const ifRange = req.headers["if-range"];
    const range = ifRange !== undefined && ifRange !== etag ? null : parseRange(req.headers.range, file.sizeBytes);
    if (range === "unsatisfiable") {
      return sendError(res, 416, "BAD_USER_INPUT", `range not satisfiable: the file has ${file.sizeBytes} bytes`, { "content-range": `bytes */${file.sizeBytes}` });
    }
    if (range) {
      res.writeHead(206, { ...headers, "content-length": String(range.end - range.start + 1), "content-range": `bytes ${range.start}-${range.end}/${file.sizeBytes}` });
    } else {
      res.writeHead(200, { ...headers, "content-length": String(file.sizeBytes) });
    }
    if (req.method === "HEAD") return void res.end();
    if (file.sizeBytes === 0) return void res.end();
    await pipeline(file.read(range ?? undefined), res);
  } catch (err) {
    if (err instanceof UnauthenticatedError) deps.onUnauthenticated?.(err.message);
    if (err instanceof AppError && STATUS_OF[err.code] !== undefined) {
      const status = STATUS_OF[err.code];
      const headers: Record<string, string> = status === 401 ? { "www-authenticate": 'Bearer realm="fem"' } : status === 503 ? { "retry-after": "5" } : {};
      if (!res.headersSent) return sendError(res, status, status === 404 ? "NOT_FOUND" : err.code, status === 404 ? `artifact ${JSON.stringify(id)} does not exist` : err.message, headers);
    }
    // A client that went away mid-download is not a server error.
    if (res.headersSent) return void res.destroy();
    logger.error("artifact download failed", { artifactId: id, error: toError(err).message });
    sendError(res, 500, "INTERNAL", "Internal server error");
  }
}
