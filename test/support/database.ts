/** A throwaway PostgreSQL database per suite: created empty, dropped afterwards. */
import { randomBytes } from "node:crypto";
import { MikroORM } from "@mikro-orm/postgresql";

/** Server URL without a database; override with TEST_DATABASE_URL. */
export function adminDatabaseUrl(env: Record<string, string | undefined> = process.env): string {
  return env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function adminQuery(sql: string): Promise<void> {
  const orm = await MikroORM.init({ clientUrl: adminDatabaseUrl(), entities: [], discovery: { warnWhenNoEntities: false }, pool: { min: 0, max: 1 } });
  try {
    await orm.em.getConnection().execute(sql);
  } finally {
    await orm.close(true);
  }
}

export async function createTestDatabase(prefix = "fem_test"): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  await adminQuery(`create database "${name}"`);
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await adminQuery(`drop database if exists "${name}" with (force)`);
    },
  };
}

export interface MigratedDatabase {
  db: TestDatabase;
  orm: import("../../src/db/orm.js").Orm;
  /** Closes the ORM and drops the database; safe to call twice. */
  dispose(): Promise<void>;
}

/** A throwaway database with every migration applied and an ORM on it, for suites that test services directly. */
export async function createMigratedDatabase(poolSize = 2): Promise<MigratedDatabase> {
  const { createOrm, migrate } = await import("../../src/db/orm.js");
  const db = await createTestDatabase();
  const orm = await createOrm({ databaseUrl: db.url, poolSize });
  await migrate(orm);
  return {
    db,
    orm,
    async dispose() {
      await orm.close(true);
      await db.drop();
    },
  };
}
