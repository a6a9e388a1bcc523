/**
 * For suites that attack the sandbox launcher: whether bubblewrap is here (tests skip, saying why,
 * where it is missing), and pieces of the Python probes they run inside it.
 */
import { existsSync } from "node:fs";

export const BWRAP = "/usr/bin/bwrap";
export const PYTHON = "/usr/bin/python3";

/** Python: `write(path)` tries to write a file and returns "written" or the error's text ("Read-only file system"). */
export const PY_WRITE = `
def write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return "written"
    except OSError as e:
        return e.strerror
`;

export function hasBubblewrap(): boolean {
  return existsSync(BWRAP);
}

/** True (after printing why) when the test must be skipped: call first in each test of such a suite. */
export function skipWithoutBubblewrap(): boolean {
  if (hasBubblewrap()) return false;
  console.log(`  skipped: ${BWRAP} is missing (apt-get install bubblewrap)`);
  return true;
}
