import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  ApiToken,
  createApiToken,
  ensureBootstrapAdminToken,
  hashApiToken,
  listApiTokens,
  resolveBearer,
  revokeApiToken,
  verifyApiToken,
} from "../../src/auth/index.js";
import type { Orm } from "../../src/db/orm.js";
import { AppError } from "../../src/kernel/index.js";
import { createMigratedDatabase, type MigratedDatabase } from "../support/database.js";

const test = suite("auth: API tokens");
let database: MigratedDatabase;
let orm: Orm;

const HOUR_MS = 3_600_000;
const inAnHour = (): Date => new Date(Date.now() + HOUR_MS);

test.before(async () => {
  database = await createMigratedDatabase();
  orm = database.orm;
});

test.after(async () => {
  await database?.dispose();
});

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, AppError, `not an AppError: ${String(error)}`);
    return error as AppError;
  }
  throw new assert.Assertion({ message: "it was accepted", operator: "rejects", expects: "a rejection", actual: "a value" });
}

async function assertRefused(token: string, reason: RegExp): Promise<void> {
  const error = await rejection(verifyApiToken(orm.em.fork(), token));
  assert.is(error.code, "UNAUTHENTICATED");
  assert.match(error.message, reason);
  assert.not.match(error.message, token, "the message does not echo the token");
}

async function tokenRows(): Promise<Record<string, unknown>[]> {
  return orm.em.getConnection().execute(`select * from api_token`);
}

test("creates a token with 256 random bits, shown once and stored only as its SHA-256", async () => {
  const { token, record } = await createApiToken(orm.em.fork(), { name: " ci pipeline ", ownerSubject: "alice", roles: ["NODE_OPERATOR", "ADMIN", "ADMIN"], expiresAt: inAnHour() });
  assert.match(token, /^fem_pat_[A-Za-z0-9_-]{43}$/);
  assert.is(record.name, "ci pipeline");
  assert.equal(record.roles, ["ADMIN", "NODE_OPERATOR"]);
  assert.is(record.tokenHash, hashApiToken(token));
  assert.match(record.tokenHash, /^[0-9a-f]{64}$/);
  assert.is(record.prefix, token.slice(0, 12));

  const rows = await tokenRows();
  const row = rows.find((r) => r.id === record.id)!;
  assert.ok(row, "the record is stored");
  for (const value of Object.values(row)) assert.not.ok(String(value).includes(token.slice(8)), "no column holds the token");
  assert.is(row.token_hash, hashApiToken(token));
  assert.is(row.last_used_at, null);
});

test("a token resolves to its owner and roles, and marks when it was last used", async () => {
  const { token, record } = await createApiToken(orm.em.fork(), { name: "reports", ownerSubject: "bob", roles: ["NODE_OPERATOR"], expiresAt: null });
  const identity = await verifyApiToken(orm.em.fork(), token);
  assert.equal(identity, { subject: "bob", name: null, email: null, roles: ["NODE_OPERATOR"], via: "api-token", expiresAt: null, apiTokenId: record.id });
  const lastUsedMs = async (): Promise<number | null> => {
    const [row] = await orm.em.getConnection().execute<{ last_used_at: string | Date | null }[]>(`select last_used_at from api_token where id = ?`, [record.id]);
    return row.last_used_at === null ? null : new Date(row.last_used_at).getTime();
  };
  const firstUseMs = await lastUsedMs();
  assert.ok(firstUseMs !== null, "last_used_at is set");
  assert.ok(Math.abs(firstUseMs! - Date.now()) < 60_000);

  await verifyApiToken(orm.em.fork(), token, new Date(firstUseMs! + 1_000));
  assert.is(await lastUsedMs(), firstUseMs, "not written again within a minute");
  await verifyApiToken(orm.em.fork(), token, new Date(firstUseMs! + 61_000));
  assert.is(await lastUsedMs(), firstUseMs! + 61_000, "written again after a minute");
});

test("resolves an API token from a bearer header, and a missing header to anonymous", async () => {
  const { token } = await createApiToken(orm.em.fork(), { name: "header", ownerSubject: "carol", roles: [] });
  const deps = { verifyApiToken: (t: string) => verifyApiToken(orm.em.fork(), t) };
  const identity = await resolveBearer(`Bearer ${token}`, deps);
  assert.is(identity?.subject, "carol");
  assert.is(identity?.via, "api-token");
  assert.is(await resolveBearer(undefined, deps), null);
  assert.is(await resolveBearer("", deps), null);
  for (const header of [`Basic ${token}`, "Bearer", `Bearer ${token} extra`, "Bearer a,b"]) {
    const error = await rejection(resolveBearer(header, deps));
    assert.is(error.code, "UNAUTHENTICATED", header);
    assert.match(error.message, /Bearer <token>/);
  }
  const noOidc = await rejection(resolveBearer("Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", deps));
  assert.is(noOidc.code, "UNAUTHENTICATED");
  assert.match(noOidc.message, /no identity provider is configured/);
});

test("a revoked token is refused at once, and revoking again changes nothing", async () => {
  const { token, record } = await createApiToken(orm.em.fork(), { name: "to revoke", ownerSubject: "dave", roles: ["ADMIN"] });
  await verifyApiToken(orm.em.fork(), token);
  const revoked = await revokeApiToken(orm.em.fork(), record.id, "admin-1");
  assert.ok(revoked.revokedAt);
  assert.is(revoked.revokedBy, "admin-1");
  await assertRefused(token, /was revoked/);
  const again = await revokeApiToken(orm.em.fork(), record.id, "admin-2");
  assert.is(again.revokedBy, "admin-1");
  assert.is(again.revokedAt!.getTime(), revoked.revokedAt!.getTime());
});

test("revoking a token that does not exist is NOT_FOUND, and a malformed id BAD_USER_INPUT", async () => {
  assert.is((await rejection(revokeApiToken(orm.em.fork(), "00000000-0000-4000-8000-000000000000", "admin"))).code, "NOT_FOUND");
  assert.is((await rejection(revokeApiToken(orm.em.fork(), "nope", "admin"))).code, "BAD_USER_INPUT");
});

test("an expired token is refused", async () => {
  const createdAt = new Date(Date.now() - 2 * HOUR_MS);
  const { token } = await createApiToken(orm.em.fork(), { name: "short-lived", ownerSubject: "erin", roles: [], expiresAt: new Date(createdAt.getTime() + HOUR_MS) }, createdAt);
  await assertRefused(token, /has expired/);
});

test("an unknown or malformed token is refused", async () => {
  await assertRefused(`fem_pat_${"A".repeat(43)}`, /unknown/);
  await assertRefused("fem_pat_", /unknown/);
  await assertRefused("not-an-api-token", /malformed/);
  await assertRefused(`fem_pat_${"A".repeat(600)}`, /malformed/);
});

test("lists a subject's tokens, newest first, with neither token nor hash needed to tell them apart", async () => {
  const em = orm.em.fork();
  const first = await createApiToken(em, { name: "first", ownerSubject: "frank", roles: [] }, new Date(Date.now() - 1_000));
  const second = await createApiToken(em, { name: "second", ownerSubject: "frank", roles: [] });
  const listed = await listApiTokens(orm.em.fork(), "frank");
  assert.equal(
    listed.map((t) => [t.name, t.prefix]),
    [
      ["second", second.token.slice(0, 12)],
      ["first", first.token.slice(0, 12)],
    ],
  );
  assert.equal(await listApiTokens(orm.em.fork(), "nobody"), []);
});

test("rejects bad input with a message naming the field, and stores nothing", async () => {
  const before = (await tokenRows()).length;
  const cases: [Parameters<typeof createApiToken>[1], string][] = [
    [{ name: "", ownerSubject: "gina", roles: [] }, "name: must be 1 to 100 characters"],
    [{ name: "   ", ownerSubject: "gina", roles: [] }, "name: must be 1 to 100 characters"],
    [{ name: "x".repeat(101), ownerSubject: "gina", roles: [] }, "name: must be 1 to 100 characters"],
    [{ name: "ok", ownerSubject: "", roles: [] }, "ownerSubject: must be a subject of 1 to 255 characters"],
    [{ name: "ok", ownerSubject: "gina", roles: ["ROOT", "ADMIN"] }, 'roles: unknown role "ROOT"; known roles are ADMIN, NODE_OPERATOR'],
    [{ name: "ok", ownerSubject: "gina", roles: [], expiresAt: new Date(Date.now() - 1_000) }, "expiresAt: must be in the future"],
    [{ name: "ok", ownerSubject: "gina", roles: [], expiresAt: new Date("not a date") }, "expiresAt: must be a valid date"],
  ];
  for (const [input, message] of cases) {
    const error = await rejection(createApiToken(orm.em.fork(), input));
    assert.is(error.code, "BAD_USER_INPUT");
    assert.is(error.message, message);
  }
  assert.is((await tokenRows()).length, before, "nothing was stored");
  assert.equal(await listApiTokens(orm.em.fork(), "gina"), []);
});

test("the bootstrap admin token is created once, with exactly the given value, and works", async () => {
  const value = `fem_pat_bootstrap_${"x".repeat(30)}`;
  const first = await ensureBootstrapAdminToken(orm.em.fork(), value);
  assert.ok(first.created);
  assert.equal(first.record.roles, ["ADMIN"]);
  const [second, third] = await Promise.all([ensureBootstrapAdminToken(orm.em.fork(), value), ensureBootstrapAdminToken(orm.em.fork(), value)]);
  assert.not.ok(second.created);
  assert.not.ok(third.created);
  assert.is(second.record.id, first.record.id);
  assert.is(await orm.em.fork().count(ApiToken, { tokenHash: hashApiToken(value) }), 1);
  const identity = await verifyApiToken(orm.em.fork(), value);
  assert.equal(identity.roles, ["ADMIN"]);
});

test("two orchestrators starting together create one bootstrap token", async () => {
  const value = `fem_pat_race_${"y".repeat(40)}`;
  const results = await Promise.all([ensureBootstrapAdminToken(orm.em.fork(), value), ensureBootstrapAdminToken(orm.em.fork(), value)]);
  assert.is(results.filter((r) => r.created).length, 1);
  assert.is(await orm.em.fork().count(ApiToken, { tokenHash: hashApiToken(value) }), 1);
});

test("a revoked bootstrap token stays revoked", async () => {
  const value = `fem_pat_revoked_bootstrap_${"z".repeat(20)}`;
  const { record } = await ensureBootstrapAdminToken(orm.em.fork(), value);
  await revokeApiToken(orm.em.fork(), record.id, "admin");
  const again = await ensureBootstrapAdminToken(orm.em.fork(), value);
  assert.not.ok(again.created);
  assert.ok(again.record.revokedAt);
  await assertRefused(value, /was revoked/);
});

test("refuses a bootstrap token that is short, unprefixed or has other characters", async () => {
  const before = (await tokenRows()).length;
  const cases: [string, string][] = [
    ["fem_pat_short", "bootstrapAdminToken: must be at least 32 characters"],
    ["x".repeat(40), "bootstrapAdminToken: must start with fem_pat_"],
    [`fem_pat_${"a".repeat(30)} `, "bootstrapAdminToken: must be at most 512 characters of A-Z, a-z, 0-9, _ and -"],
  ];
  for (const [value, message] of cases) {
    const error = await rejection(ensureBootstrapAdminToken(orm.em.fork(), value));
    assert.is(error.code, "BAD_USER_INPUT");
    assert.is(error.message, message);
  }
  assert.is((await tokenRows()).length, before);
});

test.run();
