/** Files only the agent's user may read (its secrets, an API token): checked before they are read. */
import fs from "node:fs/promises";
import { errorCode } from "../shared/index.js";

/** Largest private file the agent reads. @default 1_048_576 // 1 MiB */
export const MAX_PRIVATE_FILE_BYTES = 1_048_576;

/**
 * The text of `file`, once it is a regular file that neither group nor others may read, write or
 * execute (mode 0600 or 0400). Throws an Error whose one-line message names `setting` and the file,
 * never the content, and carries no cause (a cause could quote it).
 */
export async function readPrivateFile(file: string, setting: string): Promise<string> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, "r");
  } catch (err) {
    const code = errorCode(err);
    const why = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "cannot be read by the agent's user" : `cannot be opened (${code ?? "error"})`;
    throw new Error(`${setting} ${file} ${why}`);
  }
  try {
    // Checked on the open file, so the file cannot be swapped between the check and the read.
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error(`${setting} ${file} is not a regular file`);
    const mode = stat.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new Error(`${setting} ${file} is open to group or others (mode ${mode.toString(8).padStart(4, "0")}); make it readable by the agent's user only: chmod 600 ${file}`);
    }
    if (stat.size > MAX_PRIVATE_FILE_BYTES) throw new Error(`${setting} ${file} has ${stat.size} bytes, more than ${MAX_PRIVATE_FILE_BYTES}`);
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}
