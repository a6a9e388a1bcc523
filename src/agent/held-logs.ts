/**
 * `logs: system-only`: a run's stdout and stderr stay on the node, written to files in its sandbox
 * instead of streamed, and are listed with its outputs, so they are released (or not) like them.
 * Only the agent's own SYSTEM lines stream.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";

/** The folder of held stdout/stderr in a run's sandbox, as the manifest names it. */
export const HELD_LOGS_DIR = ".fem-logs";

export interface HeldLogs {
  write(stream: "STDOUT" | "STDERR", chunk: Buffer): void;
  /** Flushes and closes both files; never rejects. */
  close(): Promise<void>;
  /** Sandbox-relative paths of the files, for the manifest. */
  paths: readonly string[];
}

/** Creates `<runDir>/.fem-logs/stdout.log` and `stderr.log` (mode 0600) for the run's output. */
export async function holdLogs(runDir: string): Promise<HeldLogs> {
  await fs.mkdir(path.join(runDir, HELD_LOGS_DIR), { mode: 0o700 });
  const names = { STDOUT: `${HELD_LOGS_DIR}/stdout.log`, STDERR: `${HELD_LOGS_DIR}/stderr.log` } as const;
  const files: Record<"STDOUT" | "STDERR", WriteStream> = {
    STDOUT: createWriteStream(path.join(runDir, names.STDOUT), { flags: "wx", mode: 0o600 }),
    STDERR: createWriteStream(path.join(runDir, names.STDERR), { flags: "wx", mode: 0o600 }),
  };
  // A write that fails (disk full) leaves the file short; the manifest lists what was written.
  for (const file of Object.values(files)) file.on("error", () => undefined);
  return {
    write: (stream, chunk) => void files[stream].write(chunk),
    async close() {
      await Promise.all(Object.values(files).map((file) => new Promise<void>((resolve) => file.end(() => resolve()))));
    },
    paths: [names.STDOUT, names.STDERR],
  };
}
