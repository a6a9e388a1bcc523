import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOrm, migrate } from "../../src/db/orm.js";
import { createTestDatabase } from "../support/database.js";

const test = suite("migrations");

test("apply to an empty database and leave nothing for the entities to add", async () => {
  const db = await createTestDatabase();
  const orm = await createOrm({ databaseUrl: db.url });
  try {
    const applied = await migrate(orm);
    assert.ok(applied.length >= 1);
    const diff = await orm.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false });
    assert.is(diff.trim(), "", `entities differ from migrations; add a migration (scripts/create-migration.ts):\n${diff}`);
    assert.equal(await migrate(orm), [], "a second run applies nothing");
  } finally {
    await orm.close(true);
    await db.drop();
  }
});

test.run();
