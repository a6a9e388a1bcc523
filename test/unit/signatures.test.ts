import { generateKeyPairSync } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { canonicalJson } from "../../src/shared/index.js";
import {
  nodeMessageSchema,
  runCancelMessage,
  runDispatchMessage,
  signNodeMessage,
  verifyNodeMessage,
  type NodeMessage,
} from "../../src/messaging/contracts.js";
import { createWorkerSigner, signPayloads, type SignedPayload } from "../../src/messaging/payload-signer.js";

const test = suite("signed node messages");

const orchestrator = generateKeyPairSync("ed25519");
const other = generateKeyPairSync("ed25519");
const DAY_MS = 86_400_000;

const dispatch = runDispatchMessage({
  runId: "7d2d3f2d-41b0-4854-bd0a-e583cc21ccbd",
  attempt: 1,
  nodeId: "site-a",
  workflowId: "21a76c47-a847-4077-ab62-53428843dd55",
  taskId: "c7e0422b-0ebb-4b6e-8c89-c7835f49a70a",
  tool: { name: "stats", version: "1" },
  launcher: "process",
  image: null,
  argv: ["/usr/bin/python3", "stats.py", "--cohort", "a"],
  env: { B: "2", A: "1" },
  timeoutSeconds: 60,
  resultFile: "result.json",
  outputs: [],
  upstream: [{ taskKey: "prep", nodeId: "site-b", runId: "9d2d3f2d-41b0-4854-bd0a-e583cc21ccbd", result: { n: 3, mean: 1.5 } }],
}).payload;

/** As the message reaches the agent: through jsonb (keys reordered), JSON and the schema. */
function received(message: NodeMessage): NodeMessage {
  const reordered = JSON.parse(JSON.stringify(message, (_k, v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v)));
  return nodeMessageSchema.parse(reordered);
}

const pinned = { publicKeys: [orchestrator.publicKey], maxAgeMs: DAY_MS };

test("canonical JSON sorts keys at every level and keeps arrays in order", () => {
  assert.is(canonicalJson({ b: [2, { d: 1, c: null }], a: "x", u: undefined }), `{"a":"x","b":[2,{"c":null,"d":1}]}`);
});

test("a dispatch and a cancel signed by the orchestrator verify after the trip through the outbox and the broker", () => {
  const signed = signNodeMessage(dispatch, orchestrator.privateKey);
  assert.ok(signed.sig && signed.issuedAt);
  assert.equal(verifyNodeMessage(received(signed), pinned), { ok: true });
  const cancel = signNodeMessage(runCancelMessage({ runId: dispatch.runId, attempt: 1, nodeId: "site-a", reason: "stop" }).payload, orchestrator.privateKey);
  assert.equal(verifyNodeMessage(received(cancel), pinned), { ok: true });
});

test("an unsigned message is refused as unsigned", () => {
  const result = verifyNodeMessage(received(dispatch), pinned);
  assert.ok(!result.ok && /^unsigned/.test(result.reason));
});

test("a tampered argv, env, upstream input or attempt is refused", () => {
  const signed = received(signNodeMessage(dispatch, orchestrator.privateKey)) as typeof dispatch;
  for (const tampered of [
    { ...signed, argv: [...signed.argv, "--rm"] },
    { ...signed, env: { ...signed.env, LD_PRELOAD: "/tmp/x.so" } },
    { ...signed, upstream: [{ ...signed.upstream[0], result: { n: 3, mean: 99 } }] },
    { ...signed, attempt: 2 },
  ]) {
    const result = verifyNodeMessage(tampered, pinned);
    assert.ok(!result.ok && /^bad signature/.test(result.reason));
  }
});

test("a message signed with another key is refused; a second pinned key (rotation) is accepted", () => {
  const signed = received(signNodeMessage(dispatch, other.privateKey));
  assert.ok(!verifyNodeMessage(signed, pinned).ok);
  assert.equal(verifyNodeMessage(signed, { ...pinned, publicKeys: [orchestrator.publicKey, other.publicKey] }), { ok: true });
});

test("a message older than the allowed age, or issued far in the future, is refused", () => {
  const old = received(signNodeMessage(dispatch, orchestrator.privateKey, new Date(Date.now() - DAY_MS - 1_000)));
  const stale = verifyNodeMessage(old, pinned);
  assert.ok(!stale.ok && /^expired/.test(stale.reason));
  const future = received(signNodeMessage(dispatch, orchestrator.privateKey, new Date(Date.now() + DAY_MS)));
  const early = verifyNodeMessage(future, pinned);
  assert.ok(!early.ok && /future/.test(early.reason));
});

/** Outbox payloads as the relay reads them (jsonb text): dispatches of one tool to two runs, a cancel, and a row that is no node message. */
function outboxPayloads(): string[] {
  const withTool = { ...dispatch, tool: { name: "stats", version: "1", definition: { executable: "/bin/sh", launcher: "process", image: null, args: [], envKeys: [], resultFile: null, outputs: [] } } };
  const second = { ...withTool, runId: "8d2d3f2d-41b0-4854-bd0a-e583cc21ccbd", argv: ["/bin/sh", "-c", "true"] };
  const cancel = runCancelMessage({ runId: dispatch.runId, attempt: 1, nodeId: "site-a", reason: "stop" }).payload;
  return [withTool, second, cancel, { type: "not.a.node.message" }].map((m) => JSON.stringify(m, null, 1));
}

function checkSigned(signed: SignedPayload[]): void {
  assert.is(signed.length, 4);
  for (const s of signed.slice(0, 3)) {
    assert.is(s.problem, null);
    const message = received(JSON.parse(s.body.toString("utf8")) as NodeMessage);
    assert.equal(verifyNodeMessage(message, pinned), { ok: true });
  }
  const second = JSON.parse(signed[1]!.body.toString("utf8")) as typeof dispatch;
  assert.equal(second.argv, ["/bin/sh", "-c", "true"], "each dispatch keeps its own fields when the tool is shared");
  assert.ok(signed[3]!.problem, "a payload that is no node message is flagged");
  assert.equal(JSON.parse(signed[3]!.body.toString("utf8")), { type: "not.a.node.message" });
}

test("outbox payloads signed in a batch (a shared tool written once) verify one by one after the trip through the broker", () => {
  checkSigned(signPayloads(outboxPayloads(), orchestrator.privateKey));
});

test("the signing worker signs what the relay's thread would, with the orchestrator's key", async () => {
  const signer = createWorkerSigner(orchestrator.privateKey, { timeoutMs: 30_000 });
  try {
    checkSigned(await signer.signAll(outboxPayloads()));
    assert.equal(await signer.signAll([]), []);
  } finally {
    await signer.stop();
  }
  await signer.stop();
  await signer.signAll(outboxPayloads()).then(
    () => assert.unreachable("a stopped signer signs nothing"),
    (err: Error) => assert.match(err.message, /stopped/),
  );
});

test.run();
