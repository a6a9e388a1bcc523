/** Creates the MikroORM instance and applies migrations. */
import { MikroORM, type Options } from "@mikro-orm/postgresql";
import { Migrator } from "@mikro-orm/migrations";
import { entities } from "./entities.js";
import { migrationsList } from "../../migrations/index.js";

export type Orm = MikroORM;

/** The driver's connection, as the pool hands it to `afterCreate`. */
interface PgConnection {
  query(sql: string, callback: (err: Error | null) => void): void;
}

export interface OrmOptions {
  databaseUrl: string;
  /** Connection pool size. @default 10 */
  poolSize?: number;
  /** PostgreSQL ends a session idle inside a transaction this long, releasing its locks; 0 never. @default 0 */
  idleInTransactionTimeoutMs?: number;
  /** Called with every SQL statement (used by tests that count statements). */
  onQuery?: (sql: string) => void;
}

export function ormOptions(options: OrmOptions): Options {
  return {
    clientUrl: options.databaseUrl,
    entities,
    extensions: [Migrator],
    pool: {
      min: 0,
      max: options.poolSize ?? 10,
      // No JIT compilation: it suits long analytic queries, not ours. A dispatch select whose
      // estimate crossed jit_above_cost spent ~75 ms compiling for a few rows (docs/performance.md).
      // A statement after connecting, not a startup parameter, which poolers such as PgBouncer refuse.
      afterCreate: (connection: PgConnection, done: (err: Error | null, connection: PgConnection) => void) => {
        connection.query("set jit = off", (err) => done(err, connection));
      },
    },
    // Fail fast while PostgreSQL is away (clients get UNAVAILABLE) instead of waiting a minute.
    driverOptions: {
      acquireConnectionTimeout: 5_000,
      connection: { connectionTimeoutMillis: 5_000, idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 0 },
    },
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

/** Advisory lock key held while migrating ("FEMM" in ASCII). */
const MIGRATION_LOCK = 0x46454d4d;

interface PgClient {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/**
 * Applies pending migrations; returns the names applied. Orchestrators starting together take
 * turns on a session advisory lock, so the second finds nothing left to do.
 */
export async function migrate(orm: Orm): Promise<string[]> {
  const client = orm.em.getConnection().getKnex().client as { acquireConnection(): Promise<PgClient>; releaseConnection(c: PgClient): Promise<void> };
  const connection = await client.acquireConnection();
  try {
    await connection.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    const applied = await orm.getMigrator().up();
    return applied.map((m) => m.name);
  } finally {
    await connection.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => undefined);
    await client.releaseConnection(connection);
  }
}
