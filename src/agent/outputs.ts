/**
 * A run's output manifest: the files of its sandbox that match its tool's `outputs` globs, each
 * with its size and sha256. Only regular files are listed; symbolic links, globs that leave the
 * sandbox and files over the caps are listed as refused, with why, and never read.
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import picomatch from "picomatch";
import {
  MAX_ARTIFACT_BYTES,
  MAX_ARTIFACT_PATH_CHARS,
  MAX_ARTIFACT_REASON_CHARS,
  MAX_MANIFEST_FILES,
  MAX_MANIFEST_TOTAL_BYTES,
  type ManifestEntry,
  type OutputManifest,
  type OutputsPolicy,
} from "../messaging/contracts.js";
import { toError } from "../shared/index.js";

/** Most directory entries looked at while matching, so a run that made millions of files cannot stall the agent. @default 100_000 */
export const MAX_SCANNED_ENTRIES = 100_000;

const HASH_CHUNK_BYTES = 1024 * 1024;

export interface ManifestOptions {
  /** Sandbox-relative files listed whatever the globs say (held stdout/stderr), after the matches. */
  alsoList?: readonly string[];
  /** @default MAX_ARTIFACT_BYTES */
  maxFileBytes?: number;
  /** @default MAX_MANIFEST_TOTAL_BYTES */
  maxTotalBytes?: number;
}

/** Why a glob may not be used, or null: absolute globs and globs with a `..` segment leave the sandbox. */
export function globProblem(glob: string): string | null {
  if (glob.trim() === "") return "an empty glob matches nothing";
  if (path.isAbsolute(glob) || /^[A-Za-z]:[\\/]/.test(glob) || glob.startsWith("~")) return "an absolute path leaves the run's sandbox";
  if (glob.split(/[\\/]+/).some((segment) => segment === "..")) return "a path with '..' leaves the run's sandbox";
  return null;
}

/** The manifest of `runDir` for `globs` under the node's `policy`; never throws (a file it cannot read is refused). */
export async function listOutputs(runDir: string, globs: readonly string[], policy: OutputsPolicy, options: ManifestOptions = {}): Promise<OutputManifest> {
  const maxFileBytes = options.maxFileBytes ?? MAX_ARTIFACT_BYTES;
  const maxTotalBytes = options.maxTotalBytes ?? MAX_MANIFEST_TOTAL_BYTES;
  const entries: ManifestEntry[] = [];
  let omitted = 0;
  const add = (entry: ManifestEntry) => {
    if (entries.length < MAX_MANIFEST_FILES) entries.push(entry);
    else omitted += 1;
  };
  const usable: string[] = [];
  for (const glob of globs) {
    const problem = globProblem(glob);
    if (problem) add(refused(glob, `glob refused: ${problem}`));
    else usable.push(glob);
  }
  const found = usable.length === 0 ? { matches: [], truncated: false } : await walk(runDir, picomatch(usable, { dot: true }));
  const also = (options.alsoList ?? []).filter((p) => !found.matches.some((m) => m.relative === p)).map((relative): Match => ({ relative, kind: "file" }));
  let totalBytes = 0;
  for (const match of [...found.matches, ...also]) {
    if (entries.length >= MAX_MANIFEST_FILES) {
      omitted += 1;
      continue;
    }
    if (match.kind !== "file") {
      add(refused(match.relative, match.kind === "symlink" ? "a symbolic link: only regular files are released" : "not a regular file"));
      continue;
    }
    const entry = await describeFile(runDir, match.relative, { maxFileBytes, leftBytes: maxTotalBytes - totalBytes, maxTotalBytes });
    if (entry.sizeBytes !== null && entry.refused === null) totalBytes += entry.sizeBytes;
    add(entry);
  }
  if (found.truncated) add(refused("(more files)", `stopped matching after ${MAX_SCANNED_ENTRIES} directory entries`));
  return { policy, files: entries, omitted };
}

interface Match {
  relative: string;
  kind: "file" | "symlink" | "other";
}

/** Every entry under `root` whose relative path matches, without following symbolic links; in a stable order. */
async function walk(root: string, matches: (relative: string) => boolean): Promise<{ matches: Match[]; truncated: boolean }> {
  const found: Match[] = [];
  let scanned = 0;
  const pending = [""];
  while (pending.length > 0) {
    const dir = pending.shift()!;
    let names: import("node:fs").Dirent[];
    try {
      names = await fs.readdir(path.join(root, dir), { withFileTypes: true });
    } catch {
      continue;
    }
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of names) {
      scanned += 1;
      if (scanned > MAX_SCANNED_ENTRIES) return { matches: found, truncated: true };
      const relative = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) pending.push(relative);
      else if (matches(relative)) found.push({ relative, kind: entry.isFile() ? "file" : entry.isSymbolicLink() ? "symlink" : "other" });
    }
  }
  return { matches: found, truncated: false };
}

/**
 * Opens the file without following a symbolic link (one swapped in since the walk is refused by
 * the kernel), checks it is a regular file inside the sandbox and within the caps, then hashes it
 * as a stream.
 */
async function describeFile(runDir: string, relative: string, caps: { maxFileBytes: number; leftBytes: number; maxTotalBytes: number }): Promise<ManifestEntry> {
  if (relative.length > MAX_ARTIFACT_PATH_CHARS) return refused(relative, `path longer than ${MAX_ARTIFACT_PATH_CHARS} characters`);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path.join(runDir, relative), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return refused(relative, code === "ELOOP" ? "a symbolic link: only regular files are released" : `cannot be read: ${toError(err).message}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return refused(relative, "not a regular file");
    const real = await fs.realpath(path.dirname(path.join(runDir, relative)));
    const root = await fs.realpath(runDir);
    if (real !== root && !real.startsWith(root + path.sep)) return refused(relative, "leaves the run's sandbox through a linked directory");
    if (stat.size > caps.maxFileBytes) {
      return { ...refused(relative, `${stat.size} bytes: over the ${caps.maxFileBytes}-byte limit of one output file`), sizeBytes: stat.size };
    }
    if (stat.size > caps.leftBytes) {
      return { ...refused(relative, `${stat.size} bytes: the run's outputs would pass their ${caps.maxTotalBytes}-byte total limit`), sizeBytes: stat.size };
    }
    const hash = createHash("sha256");
    const buffer = Buffer.alloc(HASH_CHUNK_BYTES);
    let sizeBytes = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      sizeBytes += bytesRead;
      if (sizeBytes > caps.maxFileBytes || sizeBytes > caps.leftBytes) return refused(relative, "grew past a size limit while it was read");
    }
    return { path: relative, sizeBytes, sha256: hash.digest("hex"), refused: null };
  } catch (err) {
    return refused(relative, `cannot be read: ${toError(err).message}`);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function refused(where: string, reason: string): ManifestEntry {
  const shown = where.length > MAX_ARTIFACT_PATH_CHARS ? `${where.slice(0, MAX_ARTIFACT_PATH_CHARS - 1)}…` : where;
  const why = reason.length > MAX_ARTIFACT_REASON_CHARS ? `${reason.slice(0, MAX_ARTIFACT_REASON_CHARS - 1)}…` : reason;
  return { path: shown, sizeBytes: null, sha256: null, refused: why };
}

/** SYSTEM log lines that say what a manifest refused or left out. */
export function manifestNotes(manifest: OutputManifest): string[] {
  const notes = manifest.files.filter((f) => f.refused !== null).map((f) => `output ${f.path} not released: ${f.refused}`);
  if (manifest.omitted > 0) notes.push(`${manifest.omitted} more output(s) not listed: a manifest lists at most ${MAX_MANIFEST_FILES}`);
  return notes;
}
