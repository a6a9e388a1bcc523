import { suite } from "uvu";
import * as assert from "uvu/assert";
import { callerKey, createTokenBuckets } from "../../src/graphql/rate-limit.js";

const test = suite("mutation rate limiter");

test("allows a burst of perMinute, then one unit every 60 s / perMinute, per key", () => {
  let now = 0;
  const limiter = createTokenBuckets(6, () => now);
  for (let i = 0; i < 6; i++) assert.ok(limiter.take("a"), `take ${i + 1}`);
  assert.not.ok(limiter.take("a"));
  assert.ok(limiter.take("b"), "another key has its own bucket");
  assert.is(limiter.retryAfterMs("a"), 10_000);
  now = 9_999;
  assert.not.ok(limiter.take("a"));
  now = 10_000;
  assert.ok(limiter.take("a"));
  assert.not.ok(limiter.take("a"));
  assert.is(limiter.retryAfterMs("never-seen"), 0);
});

test("keys a caller by its subject when it has one, else by its address", () => {
  assert.is(callerKey({ subject: "alice", remoteAddress: "10.0.0.1" }), "subject:alice");
  assert.is(callerKey({ subject: null, remoteAddress: "10.0.0.1" }), "address:10.0.0.1");
});

test.run();
