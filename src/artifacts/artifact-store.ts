/**
 * Where released output files live on the orchestrator, behind a small interface. The default is a
 * directory (FEM_ARTIFACT_DIR). The chunks of a file are written in place into one staging file,
 * `staging/<id>/<chunkBytes>/data` (at index × chunkBytes), and an empty marker file named by the
 * chunk's index is made once its bytes are written, so the markers say what is staged. The last
 * chunk in makes `commit` read the staging file once, check its size and sha256, fsync it and
 * rename it to `files/<id>` (then fsync the directory): a crash leaves either the old state or the
 * new one, never half a file, and the bytes are written once.
 *
 * Staged chunks are not fsynced one by one (two fsyncs a chunk held the transfer at a quarter of the
 * broker's rate): a process crash loses nothing written, and what an operating system crash loses of
 * the page cache makes the whole file fail its checksum at commit, after which the transfer service
 * asks the node for the file again.
 */
import { createHash } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { errorCode } from "../shared/index.js";

export interface StoredFile {
  sizeBytes: number;
  /** The bytes `[start, end]` (inclusive), or the whole file. */
  read(range?: { start: number; end: number }): Readable;
}

export interface ArtifactStore {
  /**
   * Stages chunks of `artifactId` at `chunkBytes` per chunk; returns the indices that were not staged
   * before (one staged already is kept as it was).
   */
  putChunks(artifactId: string, chunkBytes: number, chunks: readonly { index: number; data: Buffer }[]): Promise<number[]>;
  /** Indices staged for `artifactId` at `chunkBytes`. */
  stagedChunks(artifactId: string, chunkBytes: number): Promise<Set<number>>;
  /**
   * Joins chunks `0…count-1` into the stored file, checking its size and sha256 before it becomes
   * visible; on a mismatch nothing is stored and the problem is returned.
   */
  commit(artifactId: string, chunkBytes: number, count: number, expected: { sizeBytes: number; sha256: string }): Promise<{ ok: true } | { ok: false; problem: string }>;
  /** Drops every staged chunk of `artifactId`. */
  discardStaged(artifactId: string): Promise<void>;
  /** The stored file, or null when there is none. */
  open(artifactId: string): Promise<StoredFile | null>;
  /** Deletes the stored file and anything staged; nothing when absent. */
  remove(artifactId: string): Promise<void>;
}

/** The staging file of one artifact at one chunk size; every other name there is a chunk's marker. */
const DATA_FILE = "data";
/** Read size when a staged file is checked. */
const READ_BYTES = 1024 * 1024;

/** Writes all of `data` at `position` of the open file. */
async function writeAt(handle: fs.FileHandle, data: Buffer, position: number): Promise<void> {
  for (let written = 0; written < data.length; ) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, position + written);
    written += bytesWritten;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkId(id: string): string {
  // Ids become file names: only UUIDs, so no path can be made of one.
  if (!UUID.test(id)) throw new Error(`not an artifact id: ${JSON.stringify(id)}`);
  return id.toLowerCase();
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** An artifact store in `root` (created when missing). */
export function createDirectoryStore(root: string): ArtifactStore {
  const stagingOf = (id: string) => path.join(root, "staging", checkId(id));
  const chunkDir = (id: string, chunkBytes: number) => path.join(stagingOf(id), String(chunkBytes));
  const fileOf = (id: string) => path.join(root, "files", checkId(id));

  async function stagedChunks(artifactId: string, chunkBytes: number): Promise<Set<number>> {
    try {
      const names = await fs.readdir(chunkDir(artifactId, chunkBytes));
      return new Set(names.filter((n) => /^\d+$/.test(n)).map(Number));
    } catch (err) {
      if (errorCode(err) === "ENOENT") return new Set();
      throw err;
    }
  }

  async function openStaging(artifactId: string, chunkBytes: number): Promise<fs.FileHandle> {
    const dir = chunkDir(artifactId, chunkBytes);
    await fs.mkdir(dir, { recursive: true });
    // Created when missing, never truncated: each chunk is written at its own place.
    return fs.open(path.join(dir, DATA_FILE), constants.O_RDWR | constants.O_CREAT, 0o600);
  }

  async function putChunks(artifactId: string, chunkBytes: number, chunks: readonly { index: number; data: Buffer }[]): Promise<number[]> {
    const staged = await stagedChunks(artifactId, chunkBytes);
    const fresh = new Map<number, Buffer>();
    for (const { index, data } of chunks) if (!staged.has(index)) fresh.set(index, data);
    if (fresh.size === 0) return [];
    const handle = await openStaging(artifactId, chunkBytes);
    try {
      await Promise.all([...fresh].map(([index, data]) => writeAt(handle, data, index * chunkBytes)));
    } finally {
      await handle.close();
    }
    // The markers only once the bytes are written: a chunk marked staged is in the data file.
    const dir = chunkDir(artifactId, chunkBytes);
    await Promise.all([...fresh.keys()].map((index) => fs.writeFile(path.join(dir, String(index)), "", { mode: 0o600 })));
    return [...fresh.keys()];
  }

  return {
    putChunks,

    stagedChunks,

    async commit(artifactId, chunkBytes, count, expected) {
      const dir = chunkDir(artifactId, chunkBytes);
      const hash = createHash("sha256");
      let sizeBytes = 0;
      const markers = await stagedChunks(artifactId, chunkBytes);
      const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !markers.has(i));
      if (missing.length > 0) return { ok: false, problem: `chunk(s) ${missing.slice(0, 10).join(", ")} of ${count} are not staged` };
      const handle = await fs.open(path.join(dir, DATA_FILE), constants.O_RDWR);
      try {
        const { size } = await handle.stat();
        sizeBytes = size;
        const buffer = Buffer.allocUnsafe(Math.min(READ_BYTES, Math.max(1, size)));
        for (let position = 0; position < size; ) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
          if (bytesRead === 0) break;
          hash.update(buffer.subarray(0, bytesRead));
          position += bytesRead;
        }
        const sha256 = hash.digest("hex");
        if (sizeBytes !== expected.sizeBytes || sha256 !== expected.sha256) {
          return { ok: false, problem: `joined chunks give ${sizeBytes} bytes with sha256 ${sha256}, not the ${expected.sizeBytes} bytes with sha256 ${expected.sha256} of the manifest` };
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      const files = path.join(root, "files");
      await fs.mkdir(files, { recursive: true });
      await fs.rename(path.join(dir, DATA_FILE), fileOf(artifactId));
      await syncDir(files);
      await fs.rm(stagingOf(artifactId), { recursive: true, force: true });
      return { ok: true };
    },

    async discardStaged(artifactId) {
      await fs.rm(stagingOf(artifactId), { recursive: true, force: true });
    },

    async open(artifactId) {
      const file = fileOf(artifactId);
      try {
        const stat = await fs.stat(file);
        return {
          sizeBytes: stat.size,
          read: (range) => createReadStream(file, range ? { start: range.start, end: range.end } : {}),
        };
      } catch (err) {
        if (errorCode(err) === "ENOENT") return null;
        throw err;
      }
    },

    async remove(artifactId) {
      await fs.rm(fileOf(artifactId), { force: true });
      await fs.rm(stagingOf(artifactId), { recursive: true, force: true });
    },
  };
}
