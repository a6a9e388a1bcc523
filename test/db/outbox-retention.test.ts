import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOrm, migrate, type Orm } from "../../src/db/orm.js";
import { pruneSentOutbox } from "../../src/messaging/relay.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

const test = suite("outbox retention");
let db: TestDatabase;
let orm: Orm;

test.before(async () => {
  db = await createTestDatabase();
  orm = await createOrm({ databaseUrl: db.url });
  await migrate(orm);
});

test.after(async () => {
  await orm?.close(true);
  await db?.drop();
});

test("deletes published rows past their retention and never an unpublished one", async () => {
  const conn = orm.em.getConnection();
  await conn.execute(
    `insert into outbox (message_id, exchange, routing_key, payload, created_at, sent_at, attempts) values
     (gen_random_uuid(), 'x', 'a.run', '{}', now() - interval '3 days', now() - interval '2 days', 1),
     (gen_random_uuid(), 'x', 'a.run', '{}', now() - interval '3 days', null, 3),
     (gen_random_uuid(), 'x', 'a.run', '{}', now(), now(), 1)`,
  );
  await pruneSentOutbox(orm.em.fork(), 24 * 3_600_000);
  const rows = await conn.execute<{ sent: boolean; old: boolean }[]>(`select sent_at is not null sent, created_at < now() - interval '1 day' old from outbox order by id`);
  assert.equal(rows, [
    { sent: false, old: true },
    { sent: true, old: false },
  ]);
});

test.run();
