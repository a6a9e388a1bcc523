/**
 * Where released output files live on the orchestrator, behind a small interface. The default is a
 * directory (FEM_ARTIFACT_DIR): chunks are staged one file each under `staging/<id>/<chunkBytes>/`,
 * then joined into `files/<id>`, and every write is atomic (temporary file, fsync, rename, fsync of
 * the directory), so a crash leaves either the old state or the new one, never half a file.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
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
  /** Stages chunk `index` of `artifactId` at `chunkBytes` per chunk; false when it was staged already (kept as it was). */
  putChunk(artifactId: string, chunkBytes: number, index: number, data: Buffer): Promise<boolean>;
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

/** Writes `target` atomically from `write`, which gets an open temporary file. */
async function writeAtomically(target: string, write: (handle: fs.FileHandle) => Promise<void>): Promise<void> {
  const dir = path.dirname(target);
  await fs.mkdir(dir, { recursive: true });
  const temporary = path.join(dir, `.${randomBytes(8).toString("hex")}.tmp`);
  const handle = await fs.open(temporary, "wx", 0o600);
  try {
    await write(handle);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(temporary, { force: true });
    throw err;
  }
  await handle.close();
  await fs.rename(temporary, target);
  await syncDir(dir);
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

  return {
    async putChunk(artifactId, chunkBytes, index, data) {
      const target = path.join(chunkDir(artifactId, chunkBytes), String(index));
      try {
        await fs.access(target);
        return false;
      } catch {
        await writeAtomically(target, (handle) => handle.writeFile(data).then(() => undefined));
        return true;
      }
    },

    stagedChunks,

    async commit(artifactId, chunkBytes, count, expected) {
      const dir = chunkDir(artifactId, chunkBytes);
      const hash = createHash("sha256");
      let sizeBytes = 0;
      let problem: string | null = null;
      await fs.mkdir(path.join(root, "files"), { recursive: true });
      try {
        await writeAtomically(fileOf(artifactId), async (handle) => {
          for (let index = 0; index < count; index += 1) {
            const data = await fs.readFile(path.join(dir, String(index)));
            hash.update(data);
            sizeBytes += data.length;
            await handle.write(data);
          }
          const sha256 = hash.digest("hex");
          if (sizeBytes !== expected.sizeBytes || sha256 !== expected.sha256) {
            problem = `joined chunks give ${sizeBytes} bytes with sha256 ${sha256}, not the ${expected.sizeBytes} bytes with sha256 ${expected.sha256} of the manifest`;
            throw new Error(problem);
          }
        });
      } catch (err) {
        if (problem !== null) return { ok: false, problem };
        throw err;
      }
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
