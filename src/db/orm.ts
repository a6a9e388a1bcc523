/** Creates the MikroORM instance and applies migrations. */
import { MikroORM, type Options } from "@mikro-orm/postgresql";
import { Migrator } from "@mikro-orm/migrations";
import { entities } from "./entities.js";
import { migrationsList } from "../../migrations/index.js";

export type Orm = MikroORM;

export interface OrmOptions {
  databaseUrl: string;
  /** Connection pool size. @default 10 */
  poolSize?: number;
  /** Called with every SQL statement (used by tests that count statements). */
  onQuery?: (sql: string) => void;
}

export function ormOptions(options: OrmOptions): Options {
  return {
    clientUrl: options.databaseUrl,
    entities,
    extensions: [Migrator],
    pool: { min: 0, max: options.poolSize ?? 10 },
    discovery: { disableDynamicFileAccess: true },
    allowGlobalContext: false,
    debug: options.onQuery ? ["query"] : false,
    logger: options.onQuery ?? (() => undefined),
    migrations: {
      migrationsList,
      tableName: "mikro_orm_migrations",
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      emit: "ts",
      path: "migrations",
    },
  };
}

export async function createOrm(options: OrmOptions): Promise<Orm> {
  return MikroORM.init(ormOptions(options));
}

/** Applies pending migrations; returns the names applied. */
export async function migrate(orm: Orm): Promise<string[]> {
  const applied = await orm.getMigrator().up();
  return applied.map((m) => m.name);
}
