/** The demo's database: dropped and created afresh, with a one-line error when PostgreSQL is away. */
import { onServer, quotedDatabaseName } from "../src/db/connect.js";

export async function resetDatabase(databaseUrl: string): Promise<void> {
  const name = quotedDatabaseName(databaseUrl);
  await onServer(databaseUrl, [`drop database if exists ${name} with (force)`, `create database ${name}`]);
}
