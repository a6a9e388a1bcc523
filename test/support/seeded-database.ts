/**
 * A migrated test database with one no-op tool and nodes `n-1`…`n-<count>`, for tests that write
 * rows directly and call the lifecycle's functions in transactions of their own.
 */
import { createOrm, migrate, type Orm } from "../../src/db/orm.js";
import { createTestDatabase, type TestDatabase } from "./database.js";

/** A deterministic uuid: `group` tells rows of one kind from another, `n` numbers them. */
export const uuid = (group: number, n: number) => `00000000-0000-0000-${group.toString(16).padStart(4, "0")}-${n.toString(16).padStart(12, "0")}`;

/** The id of the seeded tool. */
export const TOOL_ID = uuid(0, 1);

export async function createSeededDatabase(options: { nodes: number; poolSize: number }): Promise<{ db: TestDatabase; orm: Orm }> {
  const db = await createTestDatabase();
  const orm = await createOrm({ databaseUrl: db.url, poolSize: options.poolSize });
  await migrate(orm);
  const conn = orm.em.getConnection();
  await conn.execute(`insert into tool (id, name, version, executable, args, env, outputs, created_at, resources) values ('${TOOL_ID}', 'noop', '1', '/bin/true', '[]', '{}', '[]', now(), '{}')`);
  await conn.execute(
    `insert into node (id, labels, capacity, launchers, allowed_tools, credential_hash, created_at, updated_at, datasets, registered_resources, connectivity)
     select 'n-' || g, '{}', 4, '["process"]', '[]', 'x', now(), now(), '[]', '{}', 'ONLINE' from generate_series(1, ${options.nodes}) g`,
  );
  return { db, orm };
}
