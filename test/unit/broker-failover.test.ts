import "reflect-metadata";
import { createServer, type IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import amqp from "amqplib";
import rascal from "rascal";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { buildBrokerConfig } from "../../src/agent/broker.js";
import { BrokerManagementError, createBrokerUsers, managementEndpoints } from "../../src/messaging/broker-users.js";
import { orchestratorTopology } from "../../src/messaging/topology.js";
import { splitUrlList } from "../../src/shared/index.js";
import { createTestVhost, MANAGEMENT_URL } from "../support/broker.js";
import { freePort } from "../support/rabbitmq-node.js";
import { withTimeout } from "../support/wait.js";

const test = suite("broker failover settings");

test("splits a URL list only where the next URL starts, dropping blanks", () => {
  assert.equal(splitUrlList("amqp://a:p,w@h1/v, amqp://h2/v,,amqps://h3/v ,"), ["amqp://a:p,w@h1/v", "amqp://h2/v", "amqps://h3/v"]);
  assert.equal(splitUrlList(" , "), []);
});

test("the orchestrator's rascal vhost lists every node, in the order given, each with its own socket options", () => {
  const topology = orchestratorTopology({
    amqpUrl: "amqp://fem:pw@rabbit-1:5672/fem",
    amqpFailoverUrls: ["amqp://fem:pw@rabbit-2:5672/fem", "amqp://fem:pw@rabbit-3:5672/fem"],
    tls: {},
    instanceId: "i1",
    ingestPrefetch: 10,
  }) as any;
  const vhost = topology.vhosts.fem;
  assert.is(vhost.connectionStrategy, "fixed");
  assert.equal(vhost.connections.map((c: any) => c.url), ["amqp://fem:pw@rabbit-1:5672/fem", "amqp://fem:pw@rabbit-2:5672/fem", "amqp://fem:pw@rabbit-3:5672/fem"]);
});

/** The configuration rascal derives and uses (its own `configure` step, as `BrokerAsPromised.create` runs it). */
function configured(config: Record<string, unknown>): Promise<any> {
  const configure = createRequire(import.meta.url)("rascal/lib/config/configure") as (config: unknown, next: (err: Error | null, result: unknown) => void) => void;
  return new Promise((resolve, reject) => configure(rascal.withDefaultConfig(config as rascal.BrokerConfig), (err, result) => (err ? reject(err) : resolve(result))));
}

test("rascal keeps the order of the nodes and reconnects after 0.5 s doubling to 5 s, on every connection of both sides", async () => {
  const orchestrator = await configured(orchestratorTopology({ amqpUrl: "amqp://fem:pw@rabbit-1:5672/fem", amqpFailoverUrls: ["amqp://fem:pw@rabbit-2:5672/fem"], tls: {}, instanceId: "i1", ingestPrefetch: 10 }));
  const agent = await configured(buildBrokerConfig({ amqpUrl: "amqp://rabbit-1:5672/fem", amqpFailoverUrls: ["amqp://rabbit-2:5672/fem"], tls: {}, nodeId: "site-a", credential: "c", capacity: 1 }));
  for (const config of [orchestrator, agent]) {
    const connections = config.vhosts.fem.connections as { hostname: string; retry: unknown }[];
    assert.equal(connections.map((c) => c.hostname), ["rabbit-1", "rabbit-2"]);
    // A retry given per connection is dropped by rascal (it used its default, 1 s doubling to 60 s).
    for (const c of connections) assert.equal(c.retry, { min: 500, max: 5_000, factor: 2, strategy: "exponential" });
  }
});

test("the agent connects to every node as its own broker user", () => {
  const config = buildBrokerConfig({ amqpUrl: "amqp://rabbit-1:5672/fem", amqpFailoverUrls: ["amqp://rabbit-2:5673/fem"], tls: {}, nodeId: "site-a", credential: "se/cret", capacity: 1 }) as any;
  assert.equal(
    config.vhosts.fem.connections.map((c: any) => c.url),
    ["amqp://fem-node.fem.site-a:se%2Fcret@rabbit-1:5672/fem", "amqp://fem-node.fem.site-a:se%2Fcret@rabbit-2:5673/fem"],
  );
});

test("the management API falls back on each AMQP node's host, or on the URLs given", () => {
  const derived = managementEndpoints({ amqpUrl: "amqp://fem:pw@rabbit-1:5672/fem", amqpFailoverUrls: ["amqp://fem:pw@rabbit-2:5672/fem"], managementUrl: null });
  assert.equal(derived.map((e) => e.baseUrl), ["http://rabbit-1:15672/api", "http://rabbit-2:15672/api"]);
  assert.is(derived[1]!.authorization, `Basic ${Buffer.from("fem:pw").toString("base64")}`);
  const given = managementEndpoints({ amqpUrl: "amqp://fem:pw@rabbit-1:5672/fem", managementUrl: "https://m1:443/", managementFailoverUrls: ["https://admin:x@m2"] });
  assert.equal(given.map((e) => e.baseUrl), ["https://m1/api", "https://m2/api"]);
  assert.is(given[1]!.authorization, `Basic ${Buffer.from("admin:x").toString("base64")}`);
});

test("broker users are managed through the next management API when one does not answer, and the error names every one tried", async () => {
  const [closed1, closed2] = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
  const users = createBrokerUsers({ amqpUrl: "amqp://guest:guest@127.0.0.1:5672", managementUrl: closed1, managementFailoverUrls: [MANAGEMENT_URL], timeoutMs: 5_000 });
  await users.check();
  const none = createBrokerUsers({ amqpUrl: "amqp://guest:guest@127.0.0.1:5672", managementUrl: closed1, managementFailoverUrls: [closed2], timeoutMs: 5_000 });
  const err = await none.check().then(() => null, (e: unknown) => e as Error);
  assert.ok(err instanceof BrokerManagementError);
  assert.is(err.message, `None of RabbitMQ's management APIs is reachable (${closed1}/api: ECONNREFUSED; ${closed2}/api: ECONNREFUSED). Enable it: rabbitmq-plugins enable rabbitmq_management; or set FEM_RABBITMQ_MANAGEMENT_URL.`);
});

/** Reads a request's body. */
async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test("closing a node's connections gets past RabbitMQ's 500 when they closed anyway, and still fails while one stays open", async () => {
  const vhost = await createTestVhost("fem_close");
  // In front of the real management API: DELETEs of a user's connections are answered 500, after
  // being carried out ("forward") as RabbitMQ does when one closes by itself meanwhile, or instead ("refuse").
  let mode: "forward" | "refuse" = "forward";
  let injected = 0;
  const upstream = new URL(MANAGEMENT_URL);
  const proxy = createServer((req, res) => {
    void (async () => {
      const body = await bodyOf(req);
      const closing = req.method === "DELETE" && req.url!.includes("/connections/username/");
      if (closing && mode === "refuse") {
        injected += 1;
        res.writeHead(500).end();
        return;
      }
      const answer = await fetch(`${upstream.origin}${req.url}`, { method: req.method, headers: { authorization: req.headers.authorization!, "content-type": "application/json" }, body: body.length > 0 ? body : undefined, signal: AbortSignal.timeout(10_000) });
      const text = await answer.text();
      if (closing) {
        injected += 1;
        res.writeHead(500).end();
        return;
      }
      res.writeHead(answer.status, { "content-type": "application/json" }).end(text);
    })().catch(() => res.writeHead(502).end());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const port = (proxy.address() as { port: number }).port;
  const connections: amqp.ChannelModel[] = [];
  try {
    const users = createBrokerUsers({ amqpUrl: vhost.url, managementUrl: `http://guest:guest@127.0.0.1:${port}`, timeoutMs: 5_000 });
    await users.provision("n1", "secret-1", true);
    const connect = async () => {
      const url = new URL(vhost.url);
      url.username = encodeURIComponent(users.userOf("n1"));
      url.password = "secret-1";
      const connection = await amqp.connect(url.toString());
      connection.on("error", () => undefined);
      connections.push(connection);
      return { closed: new Promise<void>((resolve) => connection.on("close", () => resolve())) };
    };
    const first = await connect();
    // Closed, though the API said 500: revoking succeeds.
    await users.revoke("n1");
    await withTimeout(first.closed, 10_000, "the first connection to close");
    assert.ok(injected >= 1, "the 500 was answered");

    // Still open after every try: revoking fails, and says why.
    await users.restore("n1");
    const second = await connect();
    mode = "refuse";
    injected = 0;
    const err = await users.revoke("n1").then(() => null, (e: unknown) => e as Error);
    assert.ok(err instanceof BrokerManagementError, `refused: ${err?.message}`);
    assert.match(err!.message, /answered 500 to DELETE connections/);
    assert.is(injected, 3, "three tries while a connection stayed open");
    mode = "forward";
    await users.revoke("n1");
    await withTimeout(second.closed, 10_000, "the second connection to close");
    await users.remove("n1");
  } finally {
    for (const c of connections) await c.close().catch(() => undefined);
    await new Promise((resolve) => proxy.close(resolve));
    await vhost.drop();
  }
});

test.run();
