/** Connects to PostgreSQL with a one-line, actionable error when it is away. */
export { ServiceUnreachableError } from "../unreachable.js";
import { MikroORM } from "@mikro-orm/postgresql";
import { postgresUnreachable } from "../unreachable.js";
import { createOrm, type Orm, type OrmOptions } from "./orm.js";

async function ping(orm: Orm): Promise<void> {
  await orm.em.getConnection().execute("select 1");
}

/** Creates the database named in the URL when it does not exist yet (a newcomer's first run). */
async function createDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = "/postgres";
  const admin = await MikroORM.init({ clientUrl: url.toString(), entities: [], discovery: { warnWhenNoEntities: false }, pool: { min: 0, max: 1 } });
  try {
    await admin.em.getConnection().execute(`create database "${name.replace(/"/g, '""')}"`);
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
  await createDatabase(options.databaseUrl);
  orm = await createOrm(options);
  await ping(orm);
  return orm;
}
