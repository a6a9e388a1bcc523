#!/usr/bin/env node
/**
 * The `fem` command: the orchestrator's API from a terminal, over HTTP and graphql-ws only (it
 * imports nothing of the server). An error prints one line, `fem: CODE: message`, and exits 1
 * when the server refused or the followed work did not succeed, 2 on a problem on this side.
 */
import { readFileSync } from "node:fs";
import { CommanderError } from "commander";
import { createContext } from "./context.js";
import { CliError, errorLines, EXIT_FAILED, EXIT_USAGE } from "./errors.js";
import { buildProgram } from "./program.js";
import { cliEnvironment } from "./config.js";
import { stdio } from "./render.js";

const { version } = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
const ctx = createContext(cliEnvironment(), stdio);
const program = buildProgram(ctx, version);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version end here with 0; a usage error was printed by commander.
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    for (const line of errorLines(err)) process.stderr.write(`fem: ${line}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : EXIT_FAILED;
  }
}
// Exit once stdout is flushed, whatever keep-alive connection is still open.
process.stdout.write("", () => process.exit(process.exitCode ?? 0));
