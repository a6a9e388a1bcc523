/** API tokens: created with a name, roles and an expiry, shown once, stored only as a SHA-256 hash. */
import { createHash, randomBytes } from "node:crypto";
import { type EntityManager, UniqueConstraintViolationException } from "@mikro-orm/core";
import { BadInputError, checkSubject, checkUuid, GlobalRole, NotFoundError, UnauthenticatedError } from "../kernel/index.js";
import { ApiToken } from "./api-token.entity.js";
import { GLOBAL_ROLES, type Identity, isGlobalRole } from "./identity.js";

/** Every API token starts with this, so a bearer token can be told from a JWT without parsing it. */
export const API_TOKEN_PREFIX = "fem_pat_";
/** Random bytes in a new token: 256 bits. */
const TOKEN_RANDOM_BYTES = 32;
/** Characters of a token kept in `prefix`: the fixed prefix plus 4 random characters (24 bits, not enough to guess the rest). */
const SHOWN_PREFIX_CHARS = API_TOKEN_PREFIX.length + 4;
/** `last_used_at` is written at most once per this interval, so a busy token costs no write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;
const MAX_NAME_CHARS = 100;
/** The shortest bootstrap token accepted, prefix included. */
const MIN_BOOTSTRAP_TOKEN_CHARS = 32;
/** Longer bearer values are refused without hashing or a query. */
const MAX_TOKEN_CHARS = 512;

export interface NewApiToken {
  name: string;
  ownerSubject: string;
  roles: readonly string[];
  /** Null or absent: never expires. */
  expiresAt?: Date | null;
}

/** Lower-case hex SHA-256 of a token, as stored in `api_token.token_hash`. */
export function hashApiToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Stores a new token and returns it with its record; the token is not kept and cannot be shown again. Throws BAD_USER_INPUT naming the field. */
export async function createApiToken(em: EntityManager, input: NewApiToken, now: Date = new Date()): Promise<{ token: string; record: ApiToken }> {
  const name = checkName(input.name);
  const ownerSubject = checkSubject("ownerSubject", input.ownerSubject);
  const roles = checkRoles(input.roles);
  const expiresAt = checkExpiry(input.expiresAt ?? null, now);
  const token = API_TOKEN_PREFIX + randomBytes(TOKEN_RANDOM_BYTES).toString("base64url");
  const record = em.create(ApiToken, { name, ownerSubject, roles, tokenHash: hashApiToken(token), prefix: token.slice(0, SHOWN_PREFIX_CHARS), createdAt: now, expiresAt });
  await em.persistAndFlush(record);
  return { token, record };
}

/** The identity an API token acts as; UNAUTHENTICATED when it is unknown, revoked or expired. */
export async function verifyApiToken(em: EntityManager, token: string, now: Date = new Date()): Promise<Identity> {
  if (!token.startsWith(API_TOKEN_PREFIX) || token.length > MAX_TOKEN_CHARS) throw UnauthenticatedError.because("the API token is malformed");
  const record = await em.findOne(ApiToken, { tokenHash: hashApiToken(token) });
  if (!record) throw UnauthenticatedError.because("the API token is unknown");
  const refused = refusal(record, now);
  if (refused) throw UnauthenticatedError.because(refused);
  if (!record.lastUsedAt || now.getTime() - record.lastUsedAt.getTime() >= LAST_USED_RESOLUTION_MS) {
    const staleBefore = new Date(now.getTime() - LAST_USED_RESOLUTION_MS);
    // Conditional, so concurrent requests with one token write at most once per interval.
    await em.nativeUpdate(ApiToken, { id: record.id, $or: [{ lastUsedAt: null }, { lastUsedAt: { $lt: staleBefore } }] }, { lastUsedAt: now });
    record.lastUsedAt = now;
  }
  return { subject: record.ownerSubject, name: null, email: null, roles: [...record.roles], via: "api-token", expiresAt: record.expiresAt, apiTokenId: record.id };
}

/**
 * Checks again a token that `verifyApiToken` accepted earlier (an open WebSocket's), by its id: one
 * primary-key read, no hashing and no write. UNAUTHENTICATED when it was revoked, has expired or is gone.
 */
export async function recheckApiToken(em: EntityManager, id: string, now: Date = new Date()): Promise<void> {
  const record = await em.findOne(ApiToken, { id });
  if (!record) throw UnauthenticatedError.because("the API token no longer exists");
  const refused = refusal(record, now);
  if (refused) throw UnauthenticatedError.because(refused);
}

/** Why a stored token may not be used at `now`, or null when it may. */
function refusal(record: ApiToken, now: Date): string | null {
  if (record.revokedAt) return `the API token ${record.prefix}… was revoked`;
  if (record.expiresAt && record.expiresAt.getTime() <= now.getTime()) return `the API token ${record.prefix}… has expired`;
  return null;
}

/** Revokes a token at once (idempotent: a revoked token stays as first revoked); NOT_FOUND when there is no such token. */
export async function revokeApiToken(em: EntityManager, id: string, bySubject: string, now: Date = new Date()): Promise<ApiToken> {
  checkUuid("id", id);
  const revokedBy = checkSubject("bySubject", bySubject);
  const record = await em.findOne(ApiToken, { id });
  if (!record) throw NotFoundError.entity("ApiToken", id);
  if (!record.revokedAt) {
    record.revokedAt = now;
    record.revokedBy = revokedBy;
    await em.flush();
  }
  return record;
}

/** A subject's tokens, newest first, revoked and expired ones included. */
export async function listApiTokens(em: EntityManager, ownerSubject: string): Promise<ApiToken[]> {
  return em.find(ApiToken, { ownerSubject }, { orderBy: { createdAt: "desc", id: "asc" } });
}

/**
 * Makes sure an ADMIN token with exactly this value exists, for the first administrator. Idempotent;
 * a token an operator has revoked stays revoked. The value must start with `fem_pat_` (so bearer
 * resolution routes it here), be at least 32 characters and use base64url characters.
 */
export async function ensureBootstrapAdminToken(em: EntityManager, token: string): Promise<{ record: ApiToken; created: boolean }> {
  if (!token.startsWith(API_TOKEN_PREFIX)) throw BadInputError.field("bootstrapAdminToken", `must start with ${API_TOKEN_PREFIX}`);
  if (token.length < MIN_BOOTSTRAP_TOKEN_CHARS) throw BadInputError.field("bootstrapAdminToken", `must be at least ${MIN_BOOTSTRAP_TOKEN_CHARS} characters`);
  if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) throw BadInputError.field("bootstrapAdminToken", `must be at most ${MAX_TOKEN_CHARS} characters of A-Z, a-z, 0-9, _ and -`);
  const tokenHash = hashApiToken(token);
  const existing = await em.findOne(ApiToken, { tokenHash });
  if (existing) return { record: existing, created: false };
  const data = { name: "bootstrap administrator", ownerSubject: "bootstrap-admin", roles: [GlobalRole.ADMIN], tokenHash, prefix: token.slice(0, SHOWN_PREFIX_CHARS), createdAt: new Date() };
  try {
    // A native insert, so a lost race with another orchestrator starting leaves this em clean.
    await em.insert(ApiToken, em.create(ApiToken, data, { persist: false }));
  } catch (error) {
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
    return { record: await em.findOneOrFail(ApiToken, { tokenHash }), created: false };
  }
  return { record: await em.findOneOrFail(ApiToken, { tokenHash }), created: true };
}

function checkName(value: unknown): string {
  const name = typeof value === "string" ? value.trim() : "";
  if (name.length < 1 || name.length > MAX_NAME_CHARS) throw BadInputError.field("name", `must be 1 to ${MAX_NAME_CHARS} characters`, { length: name.length });
  return name;
}

function checkRoles(values: readonly unknown[]): GlobalRole[] {
  if (!Array.isArray(values)) throw BadInputError.field("roles", "must be a list of roles");
  const unknown = values.filter((role) => !isGlobalRole(role));
  if (unknown.length > 0) throw BadInputError.field("roles", `unknown role ${unknown.map((r) => JSON.stringify(r)).join(", ")}; known roles are ${GLOBAL_ROLES.join(", ")}`);
  return [...new Set(values as GlobalRole[])].sort();
}

function checkExpiry(value: Date | null, now: Date): Date | null {
  if (value === null) return null;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw BadInputError.field("expiresAt", "must be a valid date");
  if (value.getTime() <= now.getTime()) throw BadInputError.field("expiresAt", "must be in the future");
  return value;
}

/** True when at least one API token is neither revoked nor expired (someone can sign in). */
export async function hasUsableApiToken(em: EntityManager, now: Date = new Date()): Promise<boolean> {
  const count = await em.count(ApiToken, { revokedAt: null, $or: [{ expiresAt: null }, { expiresAt: { $gt: now } }] });
  return count > 0;
}
