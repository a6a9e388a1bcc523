import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createLogBatcher } from "../../src/agent/log-batcher.js";
import type { RunLogsEvent } from "../../src/messaging/contracts.js";
import { sleep } from "../support/wait.js";

const test = suite("log batching only under load");

const settings = { nodeId: "n", runId: "00000000-0000-4000-8000-000000000001", attempt: 1, maxBatchBytes: 65_536, maxBatchMs: 10_000 };

test("a quiet run's lines go out on the next turn, not after the batch interval", async () => {
  const sent: RunLogsEvent[] = [];
  const batcher = createLogBatcher(settings, { send: (event) => sent.push(event), idle: () => true, onIdle: () => () => undefined });
  batcher.write("STDOUT", Buffer.from("one\ntwo\n"));
  assert.is(sent.length, 0, "the lines of one read wait for the end of the turn");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(sent.map((e) => e.lines.map((l) => l.text)), [["one", "two"]]);
  batcher.stop();
});

test("while a batch is unconfirmed, lines gather and go out together when it is confirmed", async () => {
  const sent: RunLogsEvent[] = [];
  let idle = true;
  let listener = () => {};
  const batcher = createLogBatcher(settings, {
    send: (event) => {
      sent.push(event);
      idle = false;
    },
    idle: () => idle,
    onIdle: (l) => {
      listener = l;
      return () => (listener = () => {});
    },
  });
  batcher.write("STDOUT", Buffer.from("first\n"));
  await new Promise((resolve) => setImmediate(resolve));
  batcher.write("STDOUT", Buffer.from("second\n"));
  batcher.write("STDOUT", Buffer.from("third\n"));
  await sleep(20);
  assert.is(sent.length, 1, "nothing more is sent while the first batch is unconfirmed");
  idle = true;
  listener();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(sent.map((e) => e.lines.map((l) => l.seq)), [[1], [2, 3]]);
  batcher.stop();
});

test("without an idle signal a line waits at most maxBatchMs", async () => {
  const sent: RunLogsEvent[] = [];
  const batcher = createLogBatcher({ ...settings, maxBatchMs: 30 }, { send: (event) => sent.push(event) });
  batcher.write("STDOUT", Buffer.from("late\n"));
  await sleep(5);
  assert.is(sent.length, 0);
  await sleep(100);
  assert.is(sent.length, 1);
  batcher.stop();
});

test.run();
