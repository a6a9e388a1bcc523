import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createLogger, redactSecrets, redactText } from "../../src/logger.js";

const test = suite("logger: pino JSON lines, levels, child bindings and redaction");

test("writes one JSON line per event at or above its level, with child bindings", () => {
  const lines: string[] = [];
  const logger = createLogger("info", (line) => lines.push(line));
  logger.debug("hidden");
  logger.info("shown", { count: 2 });
  logger.child({ requestId: "r-1" }).warn("from a request");
  assert.is(lines.length, 2);
  const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.is(first.level, "info");
  assert.is(first.message, "shown");
  assert.is(first.count, 2);
  assert.match(first.time as string, /^\d{4}-\d\d-\d\dT/);
  assert.is(second.requestId, "r-1");
  assert.is(second.level, "warn");
});

test("silent writes nothing", () => {
  const lines: string[] = [];
  const logger = createLogger("silent", (line) => lines.push(line));
  logger.error("nothing");
  assert.is(lines.length, 0);
});

test("masks our tokens, bearer headers and URL passwords in messages and fields", () => {
  assert.is(redactText("token fem_pat_abcdefghijklmnopqrstuvwxyz012345 used"), "token fem_pat_[redacted] used");
  assert.is(redactText("node fem_node_SECRETSECRETSECRET"), "node fem_node_[redacted]");
  assert.is(redactText("sent Authorization: Bearer eyJhbGciOi.payload.sig"), "sent Authorization: Bearer [redacted]");
  assert.is(redactText("amqp://user:hunter2@rabbit:5672/vh"), "amqp://user:***@rabbit:5672/vh");
  assert.is(redactText("postgres://postgres@127.0.0.1:5432/fem"), "postgres://postgres@127.0.0.1:5432/fem");
  const fields = redactSecrets({ authorization: "Basic Z3Vlc3Q6Z3Vlc3Q=", nested: { password: "pw", list: ["fem_pat_zzzzzzzzzzzzzzzzzzzzzzzz"] }, prefix: "fem_pat_ab" }) as Record<string, any>;
  assert.is(fields.authorization, "[redacted]");
  assert.is(fields.nested.password, "[redacted]");
  assert.equal(fields.nested.list, ["fem_pat_[redacted]"]);
  const lines: string[] = [];
  createLogger("info", (line) => lines.push(line)).error("failed for amqp://guest:guest@h/v", { error: new Error("Bearer abc.def rejected") });
  assert.not.match(lines[0], /guest:guest|abc\.def/);
});

test.run();
