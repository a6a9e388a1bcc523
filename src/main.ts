#!/usr/bin/env node
/** `npm start`: runs one orchestrator instance until SIGTERM/SIGINT. */
import "reflect-metadata";
import { AuthNotConfiguredError, createOrchestrator } from "./app.js";
import { loadConfig } from "./config.js";
import { ServiceUnreachableError } from "./unreachable.js";
import { createLogger } from "./logger.js";

const parsed = loadConfig();
if (!parsed.ok) {
  console.error("fem-orchestrator: invalid configuration:");
  for (const problem of parsed.problems) console.error(`  - ${problem}`);
  process.exit(1);
}
const config = parsed.config;
const logger = createLogger(config.logLevel, undefined, { format: config.logFormat });

try {
  const orchestrator = await createOrchestrator(config, logger);
  console.log(`fem-orchestrator listening on ${orchestrator.url}${config.auth === "off" ? " (FEM_AUTH=off: authentication is OFF, every caller is a local ADMIN; for local development only)" : ""}`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      console.error(`fem-orchestrator: second ${signal}, exiting now`);
      process.exit(1);
    }
    stopping = true;
    const force = setTimeout(() => {
      console.error(`fem-orchestrator: shutdown took over ${config.shutdownTimeoutMs} ms, exiting`);
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    orchestrator.stop().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
} catch (err) {
  if (err instanceof ServiceUnreachableError || err instanceof AuthNotConfiguredError) {
    console.error(`fem-orchestrator: ${err.message}`);
  } else {
    console.error("fem-orchestrator: failed to start:", err instanceof Error ? err.message : err);
  }
  process.exit(1);
}
