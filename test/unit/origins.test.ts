import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOriginPolicy, normalizeOrigin } from "../../src/graphql/origins.js";
import { createSocketCounter } from "../../src/graphql/socket-limits.js";

const test = suite("origin policy and socket counter");

test("normalizes origins: lower-case host, default port dropped, anything but scheme://host[:port] refused", () => {
  assert.is(normalizeOrigin("HTTPS://Dashboard.Example.org:443"), "https://dashboard.example.org");
  assert.is(normalizeOrigin("http://localhost:5173"), "http://localhost:5173");
  for (const value of ["null", "file://", "https://a.example/path", "https://user@a.example", "ftp://a.example", "", undefined]) {
    assert.is(normalizeOrigin(value), null, String(value));
  }
});

test("allows an upgrade without Origin, from a listed origin exactly, or from the server's own host", () => {
  const policy = createOriginPolicy(["https://dashboard.example.org", "http://localhost:5173"]);
  assert.ok(policy.allowsUpgrade(undefined, "api.example.org"));
  assert.ok(policy.allowsUpgrade("https://dashboard.example.org", "api.example.org"));
  assert.ok(policy.allowsUpgrade("http://localhost:5173", "127.0.0.1:4000"));
  assert.not.ok(policy.allowsUpgrade("http://localhost:5174", "127.0.0.1:4000"), "another port is another origin");
  assert.not.ok(policy.allowsUpgrade("http://dashboard.example.org", "api.example.org"), "another scheme is another origin");
  assert.not.ok(policy.allowsUpgrade("https://dashboard.example.org.evil.com", "api.example.org"));
  assert.ok(policy.allowsUpgrade("https://api.example.org", "api.example.org"), "same origin, default port");
  assert.ok(policy.allowsUpgrade("http://127.0.0.1:4000", "127.0.0.1:4000"), "same origin");
  assert.not.ok(policy.allowsUpgrade("http://127.0.0.1:4001", "127.0.0.1:4000"));
  assert.not.ok(policy.allowsUpgrade("null", "127.0.0.1:4000"));
  assert.ok(policy.isListed("https://dashboard.example.org"));
  assert.not.ok(policy.isListed("https://api.example.org"), "same origin needs no CORS");
});

test("counts sockets per subject up to the limit, and a release (even twice) frees one place", () => {
  const counter = createSocketCounter(2);
  const first = counter.acquire("alice")!;
  assert.ok(counter.acquire("alice"));
  assert.is(counter.acquire("alice"), null);
  assert.ok(counter.acquire("bob"), "each subject has its own count");
  first();
  first();
  assert.is(counter.count("alice"), 1);
  assert.ok(counter.acquire("alice"));
});

test.run();
