import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { GlobalRole } from "../../src/kernel/index.js";
import { rememberUser, User } from "../../src/auth/index.js";
import type { Orm } from "../../src/db/orm.js";
import { createMigratedDatabase, type MigratedDatabase } from "../support/database.js";

const test = suite("auth: users");
let database: MigratedDatabase;
let orm: Orm;

test.before(async () => {
  database = await createMigratedDatabase();
  orm = database.orm;
});

test.after(async () => {
  await database?.dispose();
});

test("records an OIDC caller, then refreshes its name, email, roles and last sighting but not when it was first seen", async () => {
  const firstSeen = new Date("2026-11-01T10:00:00Z");
  const later = new Date("2026-11-02T10:00:00Z");
  await rememberUser(orm.em.fork(), { subject: "alice", name: "Alice", email: "alice@example.org", roles: [], via: "oidc", expiresAt: null }, firstSeen);
  await rememberUser(orm.em.fork(), { subject: "alice", name: "Alice A.", email: null, roles: [GlobalRole.ADMIN], via: "oidc", expiresAt: null }, later);
  const user = await orm.em.fork().findOneOrFail(User, { subject: "alice" });
  assert.equal(
    { name: user.displayName, email: user.email, roles: user.roles, createdAt: user.createdAt.toISOString(), lastSeenAt: user.lastSeenAt?.toISOString() },
    { name: "Alice A.", email: null, roles: ["ADMIN"], createdAt: firstSeen.toISOString(), lastSeenAt: later.toISOString() },
  );
});

test("does not record a caller that came with an API token", async () => {
  assert.is(await rememberUser(orm.em.fork(), { subject: "bot", name: null, email: null, roles: [GlobalRole.ADMIN], via: "api-token", expiresAt: null, apiTokenId: "x" }), null);
  assert.is(await orm.em.fork().count(User, { subject: "bot" }), 0);
});

test.run();
