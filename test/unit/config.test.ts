import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseConfig } from "../../src/config.js";

const test = suite("configuration");

test("uses defaults when nothing is set", () => {
  const result = parseConfig({});
  assert.ok(result.ok);
  if (result.ok) {
    assert.is(result.config.port, 4000);
    assert.is(result.config.host, "127.0.0.1");
    assert.is(result.config.migrateOnStart, true);
  }
});

test("has API limits that every existing query fits, and refuses nonsense ones", () => {
  const result = parseConfig({});
  assert.ok(result.ok);
  if (result.ok) {
    const c = result.config;
    assert.equal(
      [c.maxQueryDepth, c.maxQueryAliases, c.maxQueryCost, c.maxQueryTokens, c.mutationsPerMinute, c.maxRunsPerWorkflow, c.maxSubscriptionsPerSocket, c.maxSocketsPerUser],
      [12, 30, 25_000, 5_000, 600, 20_000, 100, 20],
    );
  }
  const bad = parseConfig({ FEM_MAX_QUERY_DEPTH: "1", FEM_MUTATIONS_PER_MINUTE: "0", FEM_MAX_QUERY_COST: "lots", FEM_MAX_SUBSCRIPTIONS_PER_SOCKET: "0", FEM_MAX_SOCKETS_PER_USER: "x" });
  assert.not.ok(bad.ok);
  if (!bad.ok) assert.is(bad.problems.length, 5, bad.problems.join("\n"));
});

test("settles runs a live node leaves out after 3 heartbeats and 30 s by default, and refuses a count of 0", () => {
  const result = parseConfig({});
  assert.ok(result.ok);
  if (result.ok) assert.equal([result.config.unreportedHeartbeats, result.config.unreportedRunGraceMs], [3, 30_000]);
  const set = parseConfig({ FEM_UNREPORTED_HEARTBEATS: "5", FEM_UNREPORTED_RUN_GRACE_MS: "0" });
  assert.ok(set.ok && set.config.unreportedHeartbeats === 5 && set.config.unreportedRunGraceMs === 0);
  const bad = parseConfig({ FEM_UNREPORTED_HEARTBEATS: "0", FEM_UNREPORTED_RUN_GRACE_MS: "-1" });
  assert.not.ok(bad.ok);
  if (!bad.ok) assert.is(bad.problems.length, 2, bad.problems.join("\n"));
});

test("lists every problem at once", () => {
  const result = parseConfig({ PORT: "seventy", AMQP_URL: "http://nope", FEM_MISSED_HEARTBEATS: "0", FEM_MIGRATE_ON_START: "maybe" });
  assert.not.ok(result.ok);
  if (!result.ok) {
    assert.is(result.problems.length, 4, result.problems.join("\n"));
    assert.ok(result.problems.some((p) => p.startsWith("PORT")));
    assert.ok(result.problems.some((p) => p.startsWith("AMQP_URL")));
  }
});

test("reads values and treats blanks as unset", () => {
  const result = parseConfig({ PORT: "5000", HOST: "", FEM_MIGRATE_ON_START: "false" });
  assert.ok(result.ok);
  if (result.ok) {
    assert.is(result.config.port, 5000);
    assert.is(result.config.host, "127.0.0.1");
    assert.is(result.config.migrateOnStart, false);
  }
});

test("accepts a bootstrap admin token and refuses a weak one without repeating it", () => {
  const token = `fem_pat_${"a1".repeat(16)}`;
  const good = parseConfig({ FEM_BOOTSTRAP_ADMIN_TOKEN: token });
  assert.ok(good.ok && good.config.bootstrapAdminToken === token);
  const unset = parseConfig({});
  assert.ok(unset.ok && unset.config.bootstrapAdminToken === null);
  for (const weak of ["fem_pat_short", `${"x".repeat(40)}`, `fem_pat_${"a".repeat(30)}!`]) {
    const result = parseConfig({ FEM_BOOTSTRAP_ADMIN_TOKEN: weak });
    assert.not.ok(result.ok, weak);
    if (!result.ok) {
      assert.match(result.problems.join("\n"), /^FEM_BOOTSTRAP_ADMIN_TOKEN: must be fem_pat_ followed by/);
      assert.not.ok(result.problems.join("\n").includes(weak), "the value is not repeated");
    }
  }
});

test("logs JSON by default, pretty on request, and serves metrics without a token unless one is set", () => {
  const defaults = parseConfig({});
  assert.ok(defaults.ok && defaults.config.logFormat === "json" && defaults.config.metricsToken === null);
  const set = parseConfig({ LOG_FORMAT: "pretty", FEM_METRICS_TOKEN: "scrape-secret-0123456789" });
  assert.ok(set.ok && set.config.logFormat === "pretty" && set.config.metricsToken === "scrape-secret-0123456789");
  const weak = parseConfig({ FEM_METRICS_TOKEN: "short" });
  assert.ok(!weak.ok && weak.problems.some((p) => p.startsWith("FEM_METRICS_TOKEN:") && !p.includes("short")));
});

test("takes several RabbitMQ nodes of one cluster in AMQP_URL, the first preferred, and one or several management APIs", () => {
  const result = parseConfig({
    AMQP_URL: "amqp://fem:p,w@rabbit-1:5672/fem, amqp://fem:p,w@rabbit-2:5672/fem,amqp://fem:p,w@rabbit-3:5673/fem",
    FEM_RABBITMQ_MANAGEMENT_URL: "http://rabbit-1:15672,http://rabbit-2:15672",
  });
  assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
  if (!result.ok) return;
  assert.is(result.config.amqpUrl, "amqp://fem:p,w@rabbit-1:5672/fem", "a comma inside a password does not split the list");
  assert.equal(result.config.amqpFailoverUrls, ["amqp://fem:p,w@rabbit-2:5672/fem", "amqp://fem:p,w@rabbit-3:5673/fem"]);
  assert.is(result.config.brokerManagementUrl, "http://rabbit-1:15672");
  assert.equal(result.config.brokerManagementFailoverUrls, ["http://rabbit-2:15672"]);
  const single = parseConfig({});
  assert.ok(single.ok && single.config.amqpFailoverUrls.length === 0 && single.config.brokerManagementFailoverUrls.length === 0);
});

test("refuses a broker list that mixes vhosts or schemes, names a node twice or holds a non-AMQP URL, hiding passwords", () => {
  const result = parseConfig({
    AMQP_URL: "amqp://fem:secret@rabbit-1:5672/fem,amqp://fem:secret@rabbit-2:5672/other,amqps://fem:secret@rabbit-3:5671/fem,amqp://fem:secret@rabbit-1/fem,http://fem:secret@rabbit-4/fem",
    FEM_RABBITMQ_MANAGEMENT_URL: "http://rabbit-1:15672,ftp://rabbit-2",
  });
  assert.not.ok(result.ok);
  if (result.ok) return;
  const text = result.problems.join("\n");
  assert.match(text, /AMQP_URL: "http:\/\/fem:\*\*\*@rabbit-4\/fem" must start with amqp:\/\/ or amqps:\/\//);
  assert.match(text, /AMQP_URL: lists URLs of different vhosts \("fem" in amqp:\/\/fem:\*\*\*@rabbit-1:5672\/fem, "other" in /);
  assert.match(text, /AMQP_URL: mixes amqp:\/\/ and amqps:\/\//);
  assert.match(text, /AMQP_URL: lists rabbit-1:5672 twice/);
  assert.match(text, /FEM_RABBITMQ_MANAGEMENT_URL\.1: must be an http:\/\/ or https:\/\/ URL/);
  assert.not.ok(text.includes("secret"), "no password is repeated");
});

test.run();
