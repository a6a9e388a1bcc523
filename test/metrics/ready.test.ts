import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { management, rabbitmqctl } from "../support/broker.js";
import { waitUntil } from "../support/wait.js";

const test = suite("readiness: /ready follows PostgreSQL, RabbitMQ and migrations; /metrics may need a token");
let env: TestEnv;
const METRICS_TOKEN = "metrics-token-0123456789abcdef";

const base = () => env.orchestrator.url.replace(/\/graphql$/, "");

async function ready(): Promise<{ status: number; body: Record<string, string> }> {
  const response = await fetch(`${base()}/ready`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

test.before(async () => {
  env = await createTestEnv({ metricsToken: METRICS_TOKEN });
});

test.after(async () => {
  await env?.dispose();
});

test("answers 200 when PostgreSQL and RabbitMQ are reachable and every migration is applied; /health stays 200", async () => {
  const answer = await ready();
  assert.is(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.body, { status: "ready", postgres: "ok", migrations: "ok", rabbitmq: "ok" });
  assert.is((await fetch(`${base()}/health`)).status, 200);
});

test("/metrics refuses a scrape without the configured bearer token", async () => {
  assert.is((await fetch(`${base()}/metrics`)).status, 401);
  assert.is((await fetch(`${base()}/metrics`, { headers: { authorization: "Bearer wrong-token-0123456789" } })).status, 401);
  const ok = await fetch(`${base()}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  assert.is(ok.status, 200);
  assert.match(await ok.text(), /^# HELP /m);
});

/** Closes every connection to this suite's vhost (the orchestrator's own). */
async function closeConnections(): Promise<void> {
  const connections = (await management("GET", `/vhosts/${encodeURIComponent(env.vhost.name)}/connections`)) as { name: string }[];
  for (const c of connections) await management("DELETE", `/connections/${encodeURIComponent(c.name)}`).catch(() => undefined);
}

test("answers 503 with the reason while the broker is unreachable, and 200 again once it is back", async () => {
  // Only this suite's vhost is touched: guest loses its permissions there, so the instance cannot
  // reconnect once its connections are closed. (Deleting the vhost would also delete its queues,
  // and rascal can then re-subscribe on the closing connection and throw where nothing catches it.)
  await rabbitmqctl("clear_permissions", "-p", env.vhost.name, "guest");
  try {
    const down = await waitUntil(
      async () => {
        await closeConnections();
        const answer = await ready();
        return answer.status === 503 ? answer : undefined;
      },
      20_000,
      "/ready to answer 503",
      200,
    );
    assert.is(down.body.status, "not ready");
    assert.match(down.body.rabbitmq, /not connected/);
    assert.is(down.body.postgres, "ok");
    assert.is(down.body.migrations, "ok");
    const metrics = await fetch(`${base()}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.match(await metrics.text(), /^fem_broker_connected 0$/m);
  } finally {
    await rabbitmqctl("set_permissions", "-p", env.vhost.name, "guest", ".*", ".*", ".*");
  }
  await waitUntil(async () => (await ready()).status === 200, 30_000, "/ready to answer 200 again", 200);
});

test("answers 503 naming a migration that is not applied", async () => {
  const [last] = await env.sql<{ id: number; name: string }>(`select id, name from mikro_orm_migrations order by id desc limit 1`);
  await env.sql(`delete from mikro_orm_migrations where id = ?`, [last.id]);
  try {
    const answer = await ready();
    assert.is(answer.status, 503);
    assert.match(answer.body.migrations, new RegExp(`1 pending: ${last.name}`));
  } finally {
    await env.sql(`insert into mikro_orm_migrations (id, name, executed_at) values (?, ?, now())`, [last.id, last.name]);
  }
  assert.is((await ready()).status, 200);
});

test.run();
