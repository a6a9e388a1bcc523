/**
 * Writes a new migration into migrations/ from the difference between the entities and a database
 * migrated to the newest committed migration. Usage: npm run build && node dist/scripts/create-migration.js
 * (needs a reachable PostgreSQL; uses a throwaway database). Add the new class to migrations/index.ts.
 */
import "reflect-metadata";
import { createOrm, migrate } from "../src/db/orm.js";
import { createTestDatabase } from "../test/support/database.js";

const db = await createTestDatabase("fem_create_migration");
const orm = await createOrm({ databaseUrl: db.url });
try {
  await migrate(orm);
  const result = await orm.getMigrator().createMigration("migrations", false, false);
  console.log(result.fileName ? `wrote migrations/${result.fileName}` : "entities and migrations already agree");
} finally {
  await orm.close(true);
  await db.drop();
}
