/** Connects to PostgreSQL with a one-line, actionable error when it is away. */
import { MikroORM } from "@mikro-orm/postgresql";
import { postgresUnreachable } from "../unreachable.js";
import { createOrm, type Orm, type OrmOptions } from "./orm.js";

async function ping(orm: Orm): Promise<void> {
  await orm.em.getConnection().execute("select 1");
}

/** The database name in a PostgreSQL URL, quoted as an identifier. */
export function quotedDatabaseName(databaseUrl: string): string {
  return `"${decodeURIComponent(new URL(databaseUrl).pathname.slice(1)).replace(/"/g, '""')}"`;
}

/**
 * Runs statements on the `postgres` database of the server `databaseUrl` names (to create or drop
 * databases). A server that cannot be reached is a ServiceUnreachableError.
 */
export async function onServer(databaseUrl: string, statements: string[]): Promise<void> {
  const url = new URL(databaseUrl);
  url.pathname = "/postgres";
  let admin: MikroORM;
  try {
    admin = await MikroORM.init({ clientUrl: url.toString(), entities: [], discovery: { warnWhenNoEntities: false }, pool: { min: 0, max: 1 } });
    await admin.em.getConnection().execute("select 1");
  } catch (err) {
    throw postgresUnreachable(databaseUrl, err);
  }
  try {
    for (const statement of statements) await admin.em.getConnection().execute(statement);
  } finally {
    await admin.close(true);
  }
}

export async function connectDatabase(options: OrmOptions): Promise<Orm> {
  let orm: Orm | null = null;
  try {
    orm = await createOrm(options);
    await ping(orm);
    return orm;
  } catch (err) {
    await orm?.close(true).catch(() => undefined);
    if ((err as { code?: string }).code !== "3D000") {
      throw postgresUnreachable(options.databaseUrl, err);
    }
  }
  // A newcomer's first run: create the database the URL names.
  await onServer(options.databaseUrl, [`create database ${quotedDatabaseName(options.databaseUrl)}`]);
  orm = await createOrm(options);
  await ping(orm);
  return orm;
}
