#!/usr/bin/env node
/** `npm run migrate`: applies pending migrations to DATABASE_URL and exits. */
import "reflect-metadata";
import { loadConfig } from "../config.js";
import { ServiceUnreachableError } from "../unreachable.js";
import { connectDatabase } from "./connect.js";
import { migrate } from "./orm.js";

const parsed = loadConfig();
if (!parsed.ok) {
  for (const problem of parsed.problems) console.error(`  - ${problem}`);
  process.exit(1);
}
try {
  const orm = await connectDatabase({ databaseUrl: parsed.config.databaseUrl });
  const applied = await migrate(orm);
  await orm.close(true);
  console.log(applied.length > 0 ? `applied: ${applied.join(", ")}` : "database is up to date");
} catch (err) {
  console.error(err instanceof ServiceUnreachableError ? `fem: ${err.message}` : `fem: migration failed: ${(err as Error).message}`);
  process.exit(1);
}
