import http from "node:http";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import WebSocket from "ws";
import { createApiToken } from "../../src/auth/index.js";
import { topics } from "../../src/live/topics.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { collect, expectError, gqlOk, wsClient, wsOnce } from "../support/graphql.js";
import { waitUntil, withTimeout } from "../support/wait.js";

const test = suite("WebSocket security: origins, token expiry and revocation, limits");
const LISTED_ORIGIN = "https://dashboard.example.org";
const FOREIGN_ORIGIN = "https://evil.example.com";
const MAX_SUBSCRIPTIONS = 2;
const MAX_SOCKETS = 2;
const WAIT_MS = 10_000;
const NODE_UPDATES = "subscription { nodeUpdated { id } }";
let env: TestEnv;
const sockets: WebSocket[] = [];

test.before(async () => {
  env = await createTestEnv({ allowedOrigins: [LISTED_ORIGIN], maxSubscriptionsPerSocket: MAX_SUBSCRIPTIONS, maxSocketsPerUser: MAX_SOCKETS });
});

test.after.each(() => {
  for (const socket of sockets.splice(0)) socket.terminate();
});

test.after(async () => env?.dispose());

/** An ADMIN API token of its own subject, so each test counts only its own sockets. */
async function tokenFor(subject: string, expiresAt: Date | null = null): Promise<{ token: string; id: string }> {
  const { token, record } = await createApiToken(env.orchestrator.orm.em.fork(), { name: subject, ownerSubject: subject, roles: ["ADMIN"], expiresAt });
  return { token, id: record.id };
}

interface Upgrade {
  /** The HTTP status when the upgrade was refused, else 101. */
  status: number;
  socket: WebSocket;
}

function upgrade(origin?: string): Promise<Upgrade> {
  const socket = new WebSocket(env.orchestrator.wsUrl, "graphql-transport-ws", origin ? { origin } : {});
  sockets.push(socket);
  return withTimeout(
    new Promise<Upgrade>((resolve, reject) => {
      socket.once("open", () => resolve({ status: 101, socket }));
      socket.once("unexpected-response", (_req, res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, socket });
      });
      socket.once("error", reject);
    }),
    WAIT_MS,
    `the upgrade with Origin ${origin ?? "(none)"}`,
  );
}

interface Closed {
  code: number;
  reason: string;
}

/** A raw graphql-ws connection with `token`: resolves once acknowledged, or with how it was closed. */
async function connect(token: string): Promise<{ socket: WebSocket; acked: boolean; closed: Promise<Closed> }> {
  const { socket } = await upgrade();
  const closed = new Promise<Closed>((resolve) => socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }));
  const acked = await withTimeout(
    new Promise<boolean>((resolve) => {
      socket.on("message", (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type === "connection_ack") resolve(true);
      });
      void closed.then(() => resolve(false));
    }),
    WAIT_MS,
    "connection_ack or close",
  );
  return { socket, acked, closed };
}

function preflight(origin: string): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const request = http.request(env.orchestrator.url, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
      });
      request.on("response", (response) => {
        response.resume();
        resolve({ status: response.statusCode ?? 0, headers: response.headers });
      });
      request.on("error", reject);
      request.end();
    }),
    WAIT_MS,
    `the preflight from ${origin}`,
  );
}

test("refuses an upgrade from a foreign Origin with 403, and accepts a listed Origin, the server's own and none", async () => {
  assert.is((await upgrade(FOREIGN_ORIGIN)).status, 403);
  assert.is((await upgrade("null")).status, 403);
  assert.is((await upgrade(LISTED_ORIGIN)).status, 101);
  assert.is((await upgrade(new URL(env.orchestrator.url).origin)).status, 101, "same origin");
  assert.is((await upgrade()).status, 101, "no Origin: not a browser");
});

test("answers a CORS preflight only for a listed origin", async () => {
  const listed = await preflight(LISTED_ORIGIN);
  assert.is(listed.status, 204);
  assert.is(listed.headers["access-control-allow-origin"], LISTED_ORIGIN);
  assert.match(String(listed.headers["access-control-allow-headers"]), /authorization, content-type/);
  assert.match(String(listed.headers.vary), /Origin/);

  const foreign = await preflight(FOREIGN_ORIGIN);
  assert.is(foreign.status, 403);
  assert.is(foreign.headers["access-control-allow-origin"], undefined);

  const post = async (origin: string) =>
    fetch(env.orchestrator.url, { method: "POST", headers: { origin, "content-type": "application/json" }, body: JSON.stringify({ query: "{ __typename }" }), signal: AbortSignal.timeout(WAIT_MS) });
  const allowed = await post(LISTED_ORIGIN);
  assert.is(allowed.headers.get("access-control-allow-origin"), LISTED_ORIGIN);
  assert.match(allowed.headers.get("vary") ?? "", /Origin/);
  assert.is((await post(FOREIGN_ORIGIN)).headers.get("access-control-allow-origin"), null);
});

test("closes a socket with 4401 when its API token expires", async () => {
  const { token } = await tokenFor("expiring", new Date(Date.now() + 2_000));
  const { socket, acked, closed } = await connect(token);
  assert.ok(acked, "the token is valid when the socket opens");
  socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: NODE_UPDATES } }));
  await env.orchestrator.pubsub.waitForSubscribers(topics.allNodes, 1, WAIT_MS);
  const { code, reason } = await withTimeout(closed, WAIT_MS, "the socket to close at the token's expiry");
  assert.equal({ code, reason }, { code: 4401, reason: "token expired" });
  await waitUntil(() => env.orchestrator.pubsub.subscriberCount(topics.allNodes) === 0, WAIT_MS, "the subscription to end");
});

test("stops a revoked token at its socket's next subscribe", async () => {
  const { token, id } = await tokenFor("revoked");
  const client = wsClient(env.orchestrator.wsUrl, { token });
  let closedWith: Closed | null = null;
  client.on("closed", (event) => {
    const { code, reason } = event as Closed;
    closedWith = { code, reason };
  });
  try {
    const first = collect(client, NODE_UPDATES, {}, "nodeUpdated");
    await env.orchestrator.pubsub.waitForSubscribers(topics.allNodes, 1, WAIT_MS);
    await gqlOk(env.orchestrator.url, `mutation($id: ID!) { revokeApiToken(id: $id) { revokedAt } }`, { id });

    const refused = await wsOnce(client, NODE_UPDATES).then(
      (result) => result,
      (error: unknown) => ({ error }),
    );
    assert.not.ok("data" in refused && refused.data, `no data after revocation: ${JSON.stringify(refused)}`);
    await waitUntil(() => closedWith, WAIT_MS, "the socket to close");
    assert.equal(closedWith, { code: 4401, reason: "token revoked" });
    await waitUntil(() => env.orchestrator.pubsub.subscriberCount(topics.allNodes) === 0, WAIT_MS, "the first subscription to end too");
    await first.dispose();
  } finally {
    await client.dispose();
  }
});

test("refuses a subscribe past the per-socket limit with RATE_LIMITED naming it, and accepts one after a completion", async () => {
  const { token } = await tokenFor("subscriber");
  const client = wsClient(env.orchestrator.wsUrl, { token });
  try {
    const held = Array.from({ length: MAX_SUBSCRIPTIONS }, () => collect(client, NODE_UPDATES, {}, "nodeUpdated"));
    await env.orchestrator.pubsub.waitForSubscribers(topics.allNodes, MAX_SUBSCRIPTIONS, WAIT_MS);
    const extensions = expectError(await wsOnce(client, NODE_UPDATES), "RATE_LIMITED", new RegExp(`at most ${MAX_SUBSCRIPTIONS} operations`));
    assert.equal({ limit: extensions.limit, max: extensions.max }, { limit: "subscriptionsPerSocket", max: MAX_SUBSCRIPTIONS });

    await held[0].dispose();
    await waitUntil(() => env.orchestrator.pubsub.subscriberCount(topics.allNodes) === MAX_SUBSCRIPTIONS - 1, WAIT_MS, "a completed subscription to end");
    const again = collect(client, NODE_UPDATES, {}, "nodeUpdated");
    await env.orchestrator.pubsub.waitForSubscribers(topics.allNodes, MAX_SUBSCRIPTIONS, WAIT_MS);
    assert.equal(again.errors, []);
    for (const collector of [...held, again]) await collector.dispose();
  } finally {
    await client.dispose();
  }
});

test("closes a user's socket past the per-user limit with 4429, and counts a closed socket out", async () => {
  const { token } = await tokenFor("many-sockets");
  const open = [];
  for (let i = 0; i < MAX_SOCKETS; i++) {
    const connection = await connect(token);
    assert.ok(connection.acked, `socket ${i + 1} of ${MAX_SOCKETS} is accepted`);
    open.push(connection);
  }
  const extra = await connect(token);
  assert.not.ok(extra.acked);
  const { code, reason } = await withTimeout(extra.closed, WAIT_MS, "the extra socket to close");
  assert.is(code, 4429);
  assert.match(reason, new RegExp(`at most ${MAX_SOCKETS} per user`));

  const other = await connect((await tokenFor("someone-else")).token);
  assert.ok(other.acked, "another subject has its own count");

  open[0].socket.close(1000);
  await withTimeout(open[0].closed, WAIT_MS, "a socket to close");
  const replacement = await waitUntil(
    async () => {
      const attempt = await connect(token);
      return attempt.acked ? attempt : false;
    },
    WAIT_MS,
    "a socket to be accepted once another closed",
  );
  assert.ok(replacement.acked);
});

test.run();
