import { IsolationLevel } from "@mikro-orm/core";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { appendAuditEvent, AuditOutcome, recordAuditEvent, verifyAuditChain } from "../../src/audit/index.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { collect, gqlOk, TEST_ADMIN_SUBJECT, TEST_ADMIN_TOKEN, wsClient, type GqlResult } from "../support/graphql.js";
import { waitUntil, withTimeout } from "../support/wait.js";

const test = suite("audit log");
let env: TestEnv;

test.before(async () => {
  env = await createTestEnv();
});

test.after(async () => env?.dispose());

const REGISTER = `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id } credential } }`;
const EVENTS = `query($filter: AuditEventFilter) { auditEvents(filter: $filter, first: 50) {
  nodes { id actor action target outcome requestId details prevHash hash } } }`;
const CHAIN = `query { auditChain { intact checked firstBrokenId reason } }`;

interface EventRow {
  id: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  requestId: string;
  details: Record<string, unknown>;
}

/** POSTs an operation and keeps the response's headers, which `gql` drops. */
async function post(query: string, variables: Record<string, unknown>, token: string | null = TEST_ADMIN_TOKEN): Promise<{ result: GqlResult; requestId: string | null }> {
  const response = await fetch(env.orchestrator.url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(30_000),
  });
  return { result: (await response.json()) as GqlResult, requestId: response.headers.get("x-request-id") };
}

async function eventsOf(requestId: string): Promise<EventRow[]> {
  const data = await gqlOk<{ auditEvents: { nodes: EventRow[] } }>(env.orchestrator.url, EVENTS, { filter: { requestId } });
  return data.auditEvents.nodes;
}

const verify = () => verifyAuditChain(env.orchestrator.orm.em.fork());
const rowCount = async () => Number((await env.sql<{ n: string }>("select count(*) as n from audit_event"))[0].n);
const event = (action: string) => ({ actor: "system", action, outcome: AuditOutcome.OK, requestId: `test-${action}` });

test("keeps one intact chain when 50 events are appended at once", async () => {
  await withTimeout(Promise.all(Array.from({ length: 50 }, (_, i) => recordAuditEvent(env.orchestrator.orm, event(`parallel.${i}`)))), 30_000, "50 appends");
  const report = await verify();
  assert.equal({ intact: report.intact, firstBrokenId: report.firstBrokenId, reason: report.reason }, { intact: true, firstBrokenId: null, reason: null });
  assert.is(report.checked, await rowCount());
  assert.ok(report.checked >= 50);
  const links = await env.sql<{ n: string }>("select count(distinct prev_hash) as n from audit_event");
  assert.is(Number(links[0].n), report.checked, "no two rows chain onto the same row");
});

test("an append rolled back with its transaction leaves no row and the chain intact despite the id gap", async () => {
  const fork = env.orchestrator.orm.em.fork();
  await fork
    .transactional(async (em) => {
      await appendAuditEvent(em, event("rolled.back"));
      throw new Error("the caller's transaction fails");
    })
    .catch(() => undefined);
  await recordAuditEvent(env.orchestrator.orm, event("after.rollback"));
  assert.is((await env.sql("select 1 from audit_event where action = 'rolled.back'")).length, 0);
  const report = await verify();
  assert.ok(report.intact, report.reason ?? "");
  assert.is(report.checked, await rowCount());
});

test("refuses to append in a REPEATABLE READ transaction, whose snapshot could fork the chain", async () => {
  const error = await env.orchestrator.orm.em
    .fork()
    .transactional((em) => appendAuditEvent(em, event("repeatable.read")), { isolationLevel: IsolationLevel.REPEATABLE_READ })
    .then(
      () => null,
      (err: unknown) => err as Error,
    );
  assert.match(error?.message ?? "", /READ COMMITTED/);
});

test("redacts secret-looking details and keeps them small", async () => {
  const row = await recordAuditEvent(env.orchestrator.orm, { ...event("details"), details: { token: "abc", nested: { password: "x", ok: 1 } } });
  assert.equal(row.details, { nested: { ok: 1, password: "[redacted]" }, token: "[redacted]" });
  const big = await recordAuditEvent(env.orchestrator.orm, { ...event("big"), details: { text: "x".repeat(10_000) } });
  assert.is(big.details.truncated, true);
  assert.ok((await verify()).intact);
});

test("records a mutation over HTTP as OK with its target and returns the request id in x-request-id", async () => {
  const { result, requestId } = await post(REGISTER, { input: { id: "audit-a", capacity: 1 } });
  assert.is(result.errors, undefined, JSON.stringify(result.errors));
  assert.ok(requestId && /^[0-9a-f-]{36}$/.test(requestId), `x-request-id: ${requestId}`);
  const rows = await eventsOf(requestId);
  assert.is(rows.length, 1);
  const { actor, action, target, outcome } = rows[0];
  assert.equal({ actor, action, target, outcome, requestId: rows[0].requestId }, { actor: TEST_ADMIN_SUBJECT, action: "registerNode", target: "node:audit-a", outcome: "OK", requestId });
  assert.not.ok(JSON.stringify(rows[0].details).includes(String((result.data as { registerNode: { credential: string } }).registerNode.credential)), "the credential stays out of the log");
});

test("records an anonymous mutation as UNAUTHENTICATED and one a caller may not make as DENIED", async () => {
  const anonymous = await post(REGISTER, { input: { id: "audit-anon", capacity: 1 } }, null);
  assert.is(anonymous.result.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
  const [denied] = await eventsOf(anonymous.requestId!);
  assert.equal({ actor: denied.actor, action: denied.action, outcome: denied.outcome }, { actor: "anonymous", action: "registerNode", outcome: "UNAUTHENTICATED" });
  const { token } = (await gqlOk(env.orchestrator.url, `mutation { createApiToken(input: { name: "plain" }) { token } }`)).createApiToken;
  const plain = await post(REGISTER, { input: { id: "audit-plain", capacity: 1 } }, token);
  assert.is(plain.result.errors?.[0]?.extensions?.code, "FORBIDDEN");
  const [forbidden] = await eventsOf(plain.requestId!);
  assert.equal({ actor: forbidden.actor, outcome: forbidden.outcome }, { actor: TEST_ADMIN_SUBJECT, outcome: "DENIED" });
  assert.is((await env.sql(`select 1 from node where id in ('audit-anon', 'audit-plain')`)).length, 0, "nothing was registered");
});

test("records a sign-in failure and a refused query, on HTTP and WebSocket", async () => {
  const bogus = await post(`{ me { subject } }`, {}, "fem_pat_not-a-real-token-0123456789abcdef");
  assert.is(bogus.result.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
  const [signIn] = await waitUntil(async () => {
    const rows = await eventsOf(bogus.requestId!);
    return rows.length > 0 ? rows : undefined;
  }, 5_000, "the sign-in failure in the log");
  assert.equal({ actor: signIn.actor, action: signIn.action, outcome: signIn.outcome }, { actor: "anonymous", action: "auth.signIn", outcome: "UNAUTHENTICATED" });
  assert.not.ok(JSON.stringify(signIn.details).includes("not-a-real-token"), "the token stays out of the log");

  const { token } = (await gqlOk(env.orchestrator.url, `mutation { createApiToken(input: { name: "reader" }) { token } }`)).createApiToken;
  const refused = await post(`{ deadLetters { nodes { id } } }`, {}, token);
  assert.is(refused.result.errors?.[0]?.extensions?.code, "FORBIDDEN");
  const [denied] = await waitUntil(async () => {
    const rows = await eventsOf(refused.requestId!);
    return rows.length > 0 ? rows : undefined;
  }, 5_000, "the refused query in the log");
  assert.equal({ actor: denied.actor, action: denied.action, outcome: denied.outcome }, { actor: TEST_ADMIN_SUBJECT, action: "auth.denied", outcome: "DENIED" });

  const anonymous = wsClient(env.orchestrator.wsUrl, { token: null });
  const closed = await withTimeout(
    new Promise<number>((resolve) => {
      anonymous.on("closed", (event) => resolve((event as { code: number }).code));
      anonymous.subscribe({ query: "subscription { nodeUpdated { id } }" }, { next: () => undefined, error: () => undefined, complete: () => undefined });
    }),
    10_000,
    "the anonymous socket to be closed",
  );
  await anonymous.dispose();
  assert.is(closed, 4403);
  await waitUntil(
    async () => Number((await env.sql<{ n: string }>(`select count(*) as n from audit_event where action = 'auth.signIn' and details->>'transport' = 'websocket'`))[0].n) >= 1,
    5_000,
    "the refused socket to be in the log",
  );
});

test("records a mutation with bad input as FAILED with its error code", async () => {
  const { result, requestId } = await post(REGISTER, { input: { id: "Not A Node!" } });
  assert.is(result.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
  assert.ok(requestId);
  const rows = await eventsOf(requestId);
  assert.is(rows.length, 1);
  assert.is(rows[0].action, "registerNode");
  assert.is(rows[0].outcome, "FAILED");
  assert.is(rows[0].target, null);
  assert.is(rows[0].details.errorCode, "BAD_USER_INPUT");
});

test("records a mutation that fails validation, and no query", async () => {
  const invalid = await post(`mutation { registerNode(input: { id: "audit-b", nope: 1 }) { node { id } } }`, {});
  assert.is(invalid.result.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
  const rows = await eventsOf(invalid.requestId!);
  assert.equal(rows.map((r) => [r.action, r.outcome, r.details.errorCode]), [["registerNode", "FAILED", "BAD_USER_INPUT"]]);
  const query = await post(`query { nodes { nodes { id } } }`, {});
  assert.ok(query.requestId);
  assert.equal(await eventsOf(query.requestId), []);
});

test("records mutations inside fragments, and not one left out by @skip", async () => {
  const { result, requestId } = await post(
    `mutation { ... on Mutation { a: registerNode(input: { id: "audit-f1" }) { node { id } } } ...More
                skipped: registerNode(input: { id: "audit-f3" }) @skip(if: true) { node { id } } }
     fragment More on Mutation { b: registerNode(input: { id: "audit-f2" }) { node { id } } }`,
    {},
  );
  assert.is(result.errors, undefined, JSON.stringify(result.errors));
  const rows = await eventsOf(requestId!);
  assert.equal(rows.map((r) => [r.action, r.target, r.outcome]).sort(), [
    ["registerNode", "node:audit-f1", "OK"],
    ["registerNode", "node:audit-f2", "OK"],
  ]);
});

test("records a mutation that arrives over WebSocket", async () => {
  const client = wsClient(env.orchestrator.wsUrl);
  try {
    const results = collect(client, REGISTER, { input: { id: "audit-ws", capacity: 1 } }, "registerNode");
    await results.waitFor((items) => items.length === 1, 10_000, "the mutation's result over WebSocket");
    const data = await gqlOk<{ auditEvents: { nodes: EventRow[] } }>(env.orchestrator.url, EVENTS, { filter: { target: "node:audit-ws" } });
    assert.equal(data.auditEvents.nodes.map((r) => [r.action, r.outcome]), [["registerNode", "OK"]]);
  } finally {
    await client.dispose();
  }
});

test("reports an intact chain over GraphQL with the number of rows", async () => {
  const data = await gqlOk<{ auditChain: { intact: boolean; checked: number; firstBrokenId: string | null } }>(env.orchestrator.url, CHAIN);
  assert.equal(data.auditChain, { intact: true, checked: await rowCount(), firstBrokenId: null, reason: null });
});

test("refuses UPDATE, DELETE and TRUNCATE while the guard trigger is in place", async () => {
  for (const statement of ["update audit_event set outcome = 'DENIED'", "delete from audit_event", "truncate audit_event"]) {
    const error = await env.sql(statement).then(
      () => null,
      (err: unknown) => err as Error,
    );
    assert.ok(error && /append-only/.test(error.message), `${statement}: ${error?.message}`);
  }
});

/** A row from the middle of the chain, for the tampering tests. */
async function middleRow(): Promise<Record<string, unknown> & { id: string }> {
  const [row] = await env.sql<Record<string, unknown> & { id: string }>(
    `select id::text as id, at, actor, action, target, outcome, request_id, details, prev_hash, hash
     from audit_event order by audit_event.id offset (select count(*) / 2 from audit_event) limit 1`,
  );
  return row;
}

test("names a row edited with the guard disabled", async () => {
  const row = await middleRow();
  await env.sql("alter table audit_event disable trigger audit_event_no_update_or_delete");
  try {
    await env.sql(`update audit_event set details = '{"errorCode":"NONE"}'::jsonb where id = ?`, [row.id]);
    let report = await verify();
    assert.equal({ intact: report.intact, firstBrokenId: report.firstBrokenId }, { intact: false, firstBrokenId: row.id });
    assert.match(report.reason ?? "", /edited/);
    await env.sql(`update audit_event set details = ?::jsonb, outcome = 'DENIED' where id = ?`, [JSON.stringify(row.details), row.id]);
    report = await verify();
    assert.is(report.firstBrokenId, row.id, "an edited outcome is caught too");
    await env.sql(`update audit_event set outcome = ? where id = ?`, [row.outcome, row.id]);
    assert.ok((await verify()).intact, "the original values hash as before");
  } finally {
    await env.sql("alter table audit_event enable trigger audit_event_no_update_or_delete");
  }
});

test("detects a row deleted from the middle with the guard dropped, and a reordered row", async () => {
  const row = await middleRow();
  const [next] = await env.sql<{ id: string }>("select id::text as id from audit_event where id > ? order by audit_event.id limit 1", [row.id]);
  await env.sql("drop trigger audit_event_no_update_or_delete on audit_event");
  try {
    await env.sql("delete from audit_event where id = ?", [row.id]);
    let report = await verify();
    assert.equal({ intact: report.intact, firstBrokenId: report.firstBrokenId }, { intact: false, firstBrokenId: next.id });
    assert.match(report.reason ?? "", /deleted or reordered/);
    const { id, at, actor, action, target, outcome, request_id, details, prev_hash, hash } = row;
    await env.sql(
      "insert into audit_event (id, at, actor, action, target, outcome, request_id, details, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?)",
      [id, at, actor, action, target, outcome, request_id, JSON.stringify(details), prev_hash, hash],
    );
    assert.ok((await verify()).intact, "putting the row back restores the chain");

    // Swap the two rows' positions: each row's content and hashes move to the other's id.
    await env.sql("update audit_event set id = -1 where id = ?", [row.id]);
    await env.sql("update audit_event set id = ? where id = ?", [row.id, next.id]);
    await env.sql("update audit_event set id = ? where id = -1", [next.id]);
    report = await verify();
    assert.equal({ intact: report.intact, firstBrokenId: report.firstBrokenId }, { intact: false, firstBrokenId: row.id });
  } finally {
    await env.sql("create trigger audit_event_no_update_or_delete before update or delete on audit_event for each row execute function audit_event_append_only()");
  }
});

test("checks a window of the chain from fromId over limit rows", async () => {
  const [first] = await env.sql<{ id: string }>("select id::text as id from audit_event order by audit_event.id offset 3 limit 1");
  const report = await verifyAuditChain(env.orchestrator.orm.em.fork(), { fromId: first.id, limit: 5 });
  assert.equal({ intact: report.intact, checked: report.checked }, { intact: true, checked: 5 });
});

test.run();
