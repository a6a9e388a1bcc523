/** A run's working directory: created fresh, read back for the result file and the output size. */
import fs from "node:fs/promises";
import path from "node:path";
import { INPUTS_DIR, INPUTS_FILE, type RunDispatch, type RunInputFile } from "../messaging/contracts.js";
import { errorCode, toError } from "../shared/index.js";
import { INPUT_CACHE_DIR } from "./input-cache.js";

/** Largest result file the agent parses. */
export const MAX_RESULT_BYTES = 1024 * 1024;

/** Creates `<sandboxDir>/runs/<runId>-<attempt>/`, removing any leftover of the same name. */
export async function prepareRunDir(sandboxDir: string, runId: string, attempt: number): Promise<string> {
  const dir = path.join(sandboxDir, "runs", `${runId}-${attempt}`);
  await removeRunDir(dir);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Writes the results of upstream runs, and the input files placed under `inputs/` with their
 * checksums, to `INPUTS_FILE` in the run's directory (nothing when there are neither).
 */
export async function writeInputsFile(runDir: string, upstream: RunDispatch["upstream"], files: readonly (RunInputFile & { file: string })[] = []): Promise<void> {
  if (upstream.length === 0 && files.length === 0) return;
  const byTask: Record<string, { nodeId: string; runId: string; result: unknown }[]> = {};
  for (const u of upstream) (byTask[u.taskKey] ??= []).push({ nodeId: u.nodeId, runId: u.runId, result: u.result });
  const listed = files.map((f) => ({ task: f.task, node: f.node, path: f.path, file: f.file, sizeBytes: f.sizeBytes, sha256: f.sha256, artifactId: f.artifactId }));
  await fs.writeFile(path.join(runDir, INPUTS_FILE), JSON.stringify({ upstream: byTask, files: listed }), { mode: 0o644 });
}

/** Removes a run's directory, its read-only `inputs/` folders included (an agent that is not root could not empty them). */
export async function removeRunDir(dir: string): Promise<void> {
  await unsealDirs(path.join(dir, INPUTS_DIR));
  await fs.rm(dir, { recursive: true, force: true });
}

async function unsealDirs(dir: string): Promise<void> {
  try {
    await fs.chmod(dir, 0o700);
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) if (entry.isDirectory()) await unsealDirs(path.join(dir, entry.name));
  } catch {
    // absent, or not ours: rm says what matters
  }
}

export type ResultRead = { kind: "none" } | { kind: "result"; value: unknown } | { kind: "problem"; message: string };

/** Reads and parses the run's result file, confined to its directory and capped at `MAX_RESULT_BYTES`. */
export async function readResultFile(runDir: string, resultFile: string | null): Promise<ResultRead> {
  if (resultFile === null || resultFile === "") return { kind: "none" };
  const target = path.resolve(runDir, resultFile);
  const outside = { kind: "problem", message: `result file ${resultFile} is outside the run's sandbox; ignored` } as const;
  if (path.isAbsolute(resultFile) || !target.startsWith(runDir + path.sep)) return outside;
  try {
    // A symbolic link inside the sandbox may still point out of it.
    const real = await fs.realpath(target);
    if (!real.startsWith((await fs.realpath(runDir)) + path.sep)) return outside;
    const stat = await fs.stat(real);
    if (!stat.isFile()) return { kind: "problem", message: `result file ${resultFile} is not a regular file; ignored` };
    if (stat.size > MAX_RESULT_BYTES) {
      return { kind: "problem", message: `result file ${resultFile} has ${stat.size} bytes, more than ${MAX_RESULT_BYTES}; ignored` };
    }
    const text = await fs.readFile(real, "utf8");
    try {
      return { kind: "result", value: JSON.parse(text) as unknown };
    } catch (err) {
      return { kind: "problem", message: `result file ${resultFile} is not valid JSON (${toError(err).message}); no result reported` };
    }
  } catch (err) {
    if (errorCode(err) === "ENOENT") return { kind: "none" };
    return { kind: "problem", message: `cannot read result file ${resultFile}: ${toError(err).message}` };
  }
}

/** Total size of the regular files under `dir` but its `inputs/` folder (symbolic links are not followed). */
export async function measureOutputBytes(dir: string): Promise<number> {
  return measureBytes(dir, path.join(dir, INPUTS_DIR));
}

async function measureBytes(dir: string, skip: string): Promise<number> {
  let total = 0;
  let entries: import("node:fs").Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += full === skip ? 0 : await measureBytes(full, skip);
    else if (entry.isFile()) total += await fs.lstat(full).then((s) => s.size, () => 0);
  }
  return total;
}

/**
 * Deletes run directories and log spools (`runs/` and `spool/`, both named `<runId>-<attempt>`)
 * last modified more than `retentionMs` ago, except those of active runs. Returns how many were
 * removed; errors leave a directory for later.
 */
export async function pruneRunDirs(sandboxDir: string, retentionMs: number, active: ReadonlySet<string>): Promise<number> {
  const cutoffMs = Date.now() - retentionMs;
  let removed = 0;
  for (const sub of ["runs", "spool", INPUT_CACHE_DIR]) removed += await pruneDirsUnder(path.join(sandboxDir, sub), cutoffMs, active);
  return removed;
}

async function pruneDirsUnder(root: string, cutoffMs: number, active: ReadonlySet<string>): Promise<number> {
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (active.has(name)) continue;
    const dir = path.join(root, name);
    try {
      const stat = await fs.stat(dir);
      if (!stat.isDirectory() || stat.mtimeMs > cutoffMs) continue;
      await removeRunDir(dir);
      removed += 1;
    } catch {
      // gone already, or not removable now: try again next time
    }
  }
  return removed;
}

/**
 * Gives the run's directory (and what the agent put in it) to the uid the run executes as, but its
 * `inputs/` folder: input files stay the agent's, read-only, so the run can read them and not change them.
 */
export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await fs.lchown(dir, uid, gid);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name === INPUTS_DIR) continue;
    if (entry.isDirectory()) await chownTree(full, uid, gid);
    else await fs.lchown(full, uid, gid);
  }
}
