/** The demo's database: dropped and created afresh, with a one-line error when PostgreSQL is away. */
import { MikroORM } from "@mikro-orm/postgresql";
import { postgresUnreachable } from "../src/unreachable.js";

export async function resetDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1)).replace(/"/g, '""');
  url.pathname = "/postgres";
  let admin: MikroORM;
  try {
    admin = await MikroORM.init({ clientUrl: url.toString(), entities: [], discovery: { warnWhenNoEntities: false }, pool: { min: 0, max: 1 } });
    await admin.em.getConnection().execute("select 1");
  } catch (err) {
    throw postgresUnreachable(databaseUrl, err);
  }
  try {
    await admin.em.getConnection().execute(`drop database if exists "${name}" with (force)`);
    await admin.em.getConnection().execute(`create database "${name}"`);
  } finally {
    await admin.close(true);
  }
}
