/** The demo's database (dropped and created afresh, with a one-line error when PostgreSQL is away) and its agents' PATH. */
import { onServer, quotedDatabaseName } from "../src/db/connect.js";

export async function resetDatabase(databaseUrl: string): Promise<void> {
  const name = quotedDatabaseName(databaseUrl);
  await onServer(databaseUrl, [`drop database if exists ${name} with (force)`, `create database ${name}`]);
}

/**
 * The database `npm run demo` drops and recreates: FEM_DEMO_DATABASE (default fem_demo) on the
 * server DATABASE_URL names, never DATABASE_URL's own database.
 */
export function demoDatabaseUrl(databaseUrl: string): string {
  const name = process.env.FEM_DEMO_DATABASE || "fem_demo";
  if (!/^[A-Za-z0-9_]{1,63}$/.test(name)) throw new Error(`FEM_DEMO_DATABASE: ${JSON.stringify(name)} is not a plain database name`);
  const url = new URL(databaseUrl);
  if (decodeURIComponent(url.pathname.slice(1)) === name) {
    throw new Error(`the demo recreates its database; FEM_DEMO_DATABASE (${name}) must differ from DATABASE_URL's database`);
  }
  url.pathname = `/${name}`;
  return url.toString();
}

/** The PATH of this process, for the demo's agents to find `node`. */
export function inheritedPath(): string {
  return process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin";
}
