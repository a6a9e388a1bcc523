/** A database and vhost shared by orchestrator processes (no in-process orchestrator), with SQL access. */
import "reflect-metadata";
import { MikroORM } from "@mikro-orm/postgresql";
import { createTestVhost, type TestVhost } from "./broker.js";
import { createTestDatabase, type TestDatabase } from "./database.js";

export interface SharedServices {
  db: TestDatabase;
  vhost: TestVhost;
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  dispose(): Promise<void>;
}

/** `vhost`: one to use (dropped with the services) instead of a new one on the machine's RabbitMQ. */
export async function createSharedServices(vhost?: TestVhost): Promise<SharedServices> {
  const db = await createTestDatabase();
  vhost ??= await createTestVhost();
  let orm: MikroORM | null = null;
  const connect = async () => (orm ??= await MikroORM.init({ clientUrl: db.url, entities: [], discovery: { warnWhenNoEntities: false }, pool: { min: 0, max: 2 } }));
  return {
    db,
    vhost: vhost as TestVhost,
    async sql(query, params = []) {
      return (await (await connect()).em.getConnection().execute(query, params, "all")) as never;
    },
    async dispose() {
      await (orm as MikroORM | null)?.close(true);
      await db.drop();
      await vhost.drop();
    },
  };
}
