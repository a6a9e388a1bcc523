/**
 * The node's cache of input files on their way in: `<sandboxDir>/input-cache/<sha256>/` holds the
 * chunks received so far (`<chunkBytes>-<index>`, each written atomically once its own sha256
 * matched), then the joined file (`file`) once its sha256 matched the signed dispatch's. Named by
 * content, so a run retried after an agent restart asks only for the chunks still missing, and two
 * runs taking the same file share it. Old entries are pruned with the run directories.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { errorCode } from "../shared/index.js";

export const INPUT_CACHE_DIR = "input-cache";

export interface InputCacheEntry {
  /** The verified file, or null while it is incomplete. */
  complete(): Promise<string | null>;
  /** Indices of the chunks staged at `chunkBytes`. */
  staged(chunkBytes: number): Promise<Set<number>>;
  /** Stages one chunk (already checked against its own sha256); atomic, and harmless when repeated. */
  put(chunkBytes: number, index: number, data: Buffer): Promise<void>;
  /**
   * Joins chunks `0…count-1` and checks the size and sha256; on success the file is kept and the
   * chunks dropped, on a mismatch the chunks are dropped and the problem returned.
   */
  join(chunkBytes: number, count: number, expected: { sizeBytes: number; sha256: string }): Promise<{ ok: true; file: string } | { ok: false; problem: string }>;
}

export function inputCacheEntry(sandboxDir: string, sha256: string): InputCacheEntry {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
  const dir = path.join(sandboxDir, INPUT_CACHE_DIR, sha256);
  const chunksDir = path.join(dir, "chunks");
  const file = path.join(dir, "file");
  const chunkFile = (chunkBytes: number, index: number) => path.join(chunksDir, `${chunkBytes}-${index}`);

  return {
    async complete() {
      try {
        await fs.access(file);
        // Touched, so pruning by age keeps what runs still use.
        const now = new Date();
        await fs.utimes(dir, now, now).catch(() => undefined);
        return file;
      } catch {
        return null;
      }
    },

    async staged(chunkBytes) {
      let names: string[];
      try {
        names = await fs.readdir(chunksDir);
      } catch (err) {
        if (errorCode(err) === "ENOENT") return new Set();
        throw err;
      }
      const prefix = `${chunkBytes}-`;
      return new Set(names.filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length))).map((n) => Number(n.slice(prefix.length))));
    },

    async put(chunkBytes, index, data) {
      await fs.mkdir(chunksDir, { recursive: true, mode: 0o700 });
      const target = chunkFile(chunkBytes, index);
      const temp = `${target}.${randomBytes(6).toString("hex")}.tmp`;
      await fs.writeFile(temp, data, { mode: 0o600 });
      await fs.rename(temp, target);
    },

    async join(chunkBytes, count, expected) {
      const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
      const hash = createHash("sha256");
      let sizeBytes = 0;
      const out = await fs.open(temp, "w", 0o600);
      try {
        for (let index = 0; index < count; index += 1) {
          const data = await fs.readFile(chunkFile(chunkBytes, index));
          hash.update(data);
          sizeBytes += data.length;
          await out.write(data);
        }
        await out.sync();
      } finally {
        await out.close();
      }
      const sha256 = hash.digest("hex");
      await fs.rm(chunksDir, { recursive: true, force: true });
      if (sizeBytes !== expected.sizeBytes || sha256 !== expected.sha256) {
        await fs.rm(temp, { force: true });
        return { ok: false, problem: `${sizeBytes} bytes with sha256 ${sha256}, expected ${expected.sizeBytes} bytes with sha256 ${expected.sha256}` };
      }
      await fs.rename(temp, file);
      return { ok: true, file };
    },
  };
}

/** The sha256 of a file, streamed. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const part of createReadStream(file)) hash.update(part as Buffer);
  return hash.digest("hex");
}
