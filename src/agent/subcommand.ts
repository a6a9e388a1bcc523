/** What `fem-agent policy …` and `fem-agent outputs …` share: parsing, the one-line failure, the exit code. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { oneLine, toError } from "../shared/index.js";

/** A mistake in the command line; its line points to `--help`. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses flags and positionals strictly; an unknown flag or a missing value is a UsageError. */
export function parseCommandLine<O extends Options>(argv: readonly string[], options: O): ReturnType<typeof parseArgs<{ options: O; allowPositionals: true }>> {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(toError(err).message);
  }
}

/**
 * Runs a subcommand's body with a `print` to stdout; resolves to its exit code, or to 1 after one
 * line on stderr (`fem-agent <name>: …`) when it throws.
 */
export async function runSubcommand(name: string, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream, body: (print: (text: string) => void) => Promise<number>): Promise<number> {
  try {
    return await body((text) => stdout.write(`${text}\n`));
  } catch (err) {
    stderr.write(`fem-agent ${name}: ${oneLine(toError(err).message)}${err instanceof UsageError ? ` (see fem-agent ${name} --help)` : ""}\n`);
    return 1;
  }
}
