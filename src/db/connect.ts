/** Connects to PostgreSQL with a one-line, actionable error when it is away. */
import { MikroORM } from "@mikro-orm/postgresql";
import { maskUrl } from "../messaging/topology.js";
import { createOrm, type Orm, type OrmOptions } from "./orm.js";

/** A required service is unreachable; `message` is one line telling how to start it. */
export class ServiceUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ServiceUnreachableError";
  }
}

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ?? e.message?.split("\n")[0] ?? String(err);
}

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
  let orm = await createOrm(options);
  try {
    await ping(orm);
    return orm;
  } catch (err) {
    await orm.close(true).catch(() => undefined);
    if ((err as { code?: string }).code !== "3D000") {
      throw new ServiceUnreachableError(
        `PostgreSQL is not reachable at ${maskUrl(options.databaseUrl)} (${reason(err)}). Start it: docker-compose up -d postgres, or pg_ctlcluster <version> main start; or set DATABASE_URL.`,
        { cause: err },
      );
    }
  }
  await createDatabase(options.databaseUrl);
  orm = await createOrm(options);
  await ping(orm);
  return orm;
}
