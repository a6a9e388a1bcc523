/**
 * One artifact to one file, as `fem outputs download` fetches it: the bytes go to `<file>.part`
 * (kept when interrupted); a later download resumes from its size with a Range request; the
 * sha256 of the whole file is checked against the server's `Repr-Digest` (RFC 9530) and the
 * checksum the API listed before the part is renamed over `<file>`. A mismatch removes the part
 * and throws, so the next attempt starts clean.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { Api } from "./api.js";
import { CliError } from "./errors.js";

export interface DownloadRequest {
  /** Where the API serves it, relative to the API's origin (`/artifacts/<id>`). */
  path: string;
  file: string;
  /** Lowercase hex sha256 the API listed for it; null when only the server's `Repr-Digest` is known. */
  sha256: string | null;
  /** How messages name it (its path in the run). */
  label: string;
}

export interface Downloaded {
  file: string;
  sizeBytes: number;
  sha256: string;
  /** Bytes of a partial download this one resumed from; 0 when it started from nothing. */
  resumedFromBytes: number;
}

/** A download that receives nothing for this long is abandoned (its part is kept). @default 60_000 */
const STALL_MS = 60_000;

/** The hex sha256 a `Repr-Digest` (or `Digest`) header names, or null. */
export function sha256FromDigestHeader(header: string | null): string | null {
  const match = /(?:^|,)\s*sha-256=:([A-Za-z0-9+/]+={0,2}):/.exec(header ?? "");
  return match ? Buffer.from(match[1]!, "base64").toString("hex") : null;
}

async function sizeOf(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

export async function downloadArtifact(api: Api, request: DownloadRequest): Promise<Downloaded> {
  const part = `${request.file}.part`;
  await mkdir(dirname(request.file), { recursive: true });
  const stall = new AbortController();
  let timer = setTimeout(() => stall.abort(), STALL_MS);
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), STALL_MS);
  };
  try {
    let offset = await sizeOf(part);
    const headers: Record<string, string> = {};
    if (offset > 0) {
      headers.range = `bytes=${offset}-`;
      // The file the part came from, if that is known; else a part of another file fails the check below.
      if (request.sha256) headers["if-range"] = `"sha256-${request.sha256}"`;
    }
    let response = await api.file(request.path, { headers, signal: stall.signal });
    if (response.status === 416) {
      await response.body?.cancel();
      const total = Number(/\/(\d+)$/.exec(response.headers.get("content-range") ?? "")?.[1] ?? Number.NaN);
      if (offset !== total) {
        // Longer than the file: not a part of it. Start over.
        await rm(part, { force: true });
        offset = 0;
        response = await api.file(request.path, { signal: stall.signal });
      }
    }
    if (response.status !== 206 && response.status !== 416) offset = 0;
    if (response.status === 206 && !response.headers.get("content-range")?.startsWith(`bytes ${offset}-`)) {
      await response.body?.cancel();
      throw new CliError(`${request.label}: the server answered another range (${response.headers.get("content-range")}) than bytes ${offset}-`);
    }
    const expected = expectedSha256(request, response.headers.get("repr-digest"));
    const hash = createHash("sha256");
    if (offset > 0) await hashFile(part, hash);
    if (response.status !== 416 && response.body) {
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          alive();
          hash.update(chunk);
          done(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), tap, createWriteStream(part, { flags: offset > 0 ? "a" : "w" }));
    }
    const sha256 = hash.digest("hex");
    if (sha256 !== expected.sha256) {
      await rm(part, { force: true });
      const resumed = offset > 0 ? `; the partial download it resumed (${offset} bytes) was corrupt` : "";
      throw new CliError(`${request.label}: sha256 ${sha256} does not match ${expected.source} ${expected.sha256}${resumed}; removed ${part}, run the command again`, "CHECKSUM_MISMATCH");
    }
    await rename(part, request.file);
    return { file: request.file, sizeBytes: await sizeOf(request.file), sha256, resumedFromBytes: offset };
  } catch (err) {
    if (stall.signal.aborted && !(err instanceof CliError)) {
      throw new CliError(`${request.label}: nothing received for ${STALL_MS / 1000} s; ${part} is kept, run the command again to resume`, null, 1, { cause: err });
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The checksum to verify: the server's Repr-Digest and the API's listing, which must agree. */
function expectedSha256(request: DownloadRequest, reprDigest: string | null): { sha256: string; source: string } {
  const served = sha256FromDigestHeader(reprDigest);
  if (served && request.sha256 && served !== request.sha256) {
    throw new CliError(`${request.label}: the server's Repr-Digest (${served}) is not the sha256 the API lists (${request.sha256}); nothing was saved`, "CHECKSUM_MISMATCH");
  }
  if (served) return { sha256: served, source: "the server's Repr-Digest" };
  if (request.sha256) return { sha256: request.sha256, source: "the artifact's sha256" };
  throw new CliError(`${request.label}: the server sent no Repr-Digest to verify the file against; nothing was saved`);
}
