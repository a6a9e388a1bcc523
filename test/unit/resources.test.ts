import { generateKeyPairSync } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { runLimitsFor, unenforcedRequestsNote } from "../../src/agent/run-spec.js";
import { limitSource, type RunLimits } from "../../src/agent/launcher.js";
import { mergeResources, validateResources } from "../../src/kernel/index.js";
import { nodeMessageSchema, signNodeMessage, verifyNodeMessage, type RunDispatch } from "../../src/messaging/contracts.js";
import { dispatchOf } from "../support/dispatches.js";

const test = suite("resource requests and run limits");

const TOOL = { executable: "/usr/bin/python3", launcher: "sandbox", args: [], env: {}, resultFile: null, outputs: [] };
const NODE_DEFAULTS: RunLimits = { memoryMiB: 512, pidsMax: 64, diskMiB: null, cpuSeconds: null, cpus: null };

function dispatchWith(resources?: RunDispatch["resources"]): RunDispatch {
  const plain = dispatchOf(TOOL, { argv: ["/usr/bin/python3"], env: {}, timeoutSeconds: null, resultFile: null, outputs: [] });
  return resources ? { ...plain, resources } : plain;
}

test("a dispatch without requests keeps the node's defaults, named by their settings", () => {
  const limits = runLimitsFor(dispatchWith(), NODE_DEFAULTS);
  assert.equal({ ...limits, sources: undefined }, { ...NODE_DEFAULTS, sources: undefined });
  assert.is(limitSource(limits, "memoryMiB"), "FEM_RUN_MEMORY_MIB");
});

test("a request stricter than the node's default becomes the limit, and a looser one does not", () => {
  const strict = runLimitsFor(dispatchWith({ memoryMiB: 64, diskMiB: 10, cpus: 0.5 }), NODE_DEFAULTS);
  assert.is(strict.memoryMiB, 64);
  assert.is(strict.diskMiB, 10, "a request where the node sets no default is the limit");
  assert.is(strict.cpus, 0.5);
  assert.is(limitSource(strict, "memoryMiB"), "the task's memoryMiB request");
  assert.is(limitSource(strict, "diskMiB"), "the task's diskMiB request");
  const loose = runLimitsFor(dispatchWith({ memoryMiB: 4096 }), NODE_DEFAULTS);
  assert.is(loose.memoryMiB, 512);
  assert.is(limitSource(loose, "memoryMiB"), "FEM_RUN_MEMORY_MIB");
  assert.is(NODE_DEFAULTS.sources, undefined, "the node's defaults are not changed");
});

test("the signature covers the resources: a changed request no longer verifies", () => {
  const keys = generateKeyPairSync("ed25519");
  const signed = signNodeMessage(dispatchWith({ cpus: 2, memoryMiB: 1024 }), keys.privateKey);
  const options = { publicKeys: [keys.publicKey], maxAgeMs: 60_000 };
  assert.equal(verifyNodeMessage(signed, options), { ok: true });
  const parsed = nodeMessageSchema.parse(JSON.parse(JSON.stringify(signed)));
  assert.equal(verifyNodeMessage(parsed, options), { ok: true }, "the request survives the wire and still verifies");
  const raised = { ...signed, resources: { cpus: 2, memoryMiB: 1_000_000 } };
  assert.is(verifyNodeMessage(raised, options).ok, false);
  const dropped = { ...signed, resources: undefined };
  assert.is(verifyNodeMessage(dropped, options).ok, false);
});

test("a dispatch of a task that requests nothing carries no resources field", () => {
  assert.not.ok("resources" in dispatchWith());
});

test("a launcher that does not enforce a request says so, and one that does is silent", () => {
  const dispatch = dispatchWith({ memoryMiB: 64, cpus: 1, gpus: 1 });
  assert.is(unenforcedRequestsNote(dispatch, "process", []), "the process launcher on this node does not enforce the task's memoryMiB, cpus request(s): they only placed the run");
  assert.is(unenforcedRequestsNote(dispatch, "sandbox", ["memory", "pids", "disk", "cpuTime"]), "the sandbox launcher on this node does not enforce the task's cpus request(s): they only placed the run");
  assert.is(unenforcedRequestsNote(dispatch, "sandbox", ["memory", "disk", "cpus"]), null);
  assert.is(unenforcedRequestsNote(dispatchWith(), "process", []), null);
});

test("requests are validated with the field, the rule and the value", () => {
  assert.equal(validateResources("r", { cpus: 0.5, memoryMiB: 512, gpus: 0, diskMiB: null }), { cpus: 0.5, memoryMiB: 512, gpus: 0 });
  const cases: [Record<string, number>, RegExp][] = [
    [{ cpus: 0 }, /^r\.cpus: must be more than 0 and at most 1024 \(got 0\)$/],
    [{ cpus: 1025 }, /^r\.cpus: must be more than 0 and at most 1024/],
    [{ cpus: 0.0005 }, /^r\.cpus: must be a multiple of 0\.001/],
    [{ memoryMiB: 0 }, /^r\.memoryMiB: must be an integer from 1 to 16777216 \(got 0\)$/],
    [{ memoryMiB: 1.5 }, /^r\.memoryMiB: must be an integer/],
    [{ gpus: -1 }, /^r\.gpus: must be an integer from 0 to 64 \(got -1\)$/],
    [{ diskMiB: -5 }, /^r\.diskMiB: must be an integer from 1 to 1073741824 \(got -5\)$/],
  ];
  for (const [input, message] of cases) assert.throws(() => validateResources("r", input), (err: Error) => message.test(err.message), JSON.stringify(input));
});

test("a task's requests override the tool's amount by amount, and 0 gpus drops the tool's", () => {
  assert.equal(mergeResources({ cpus: 2, memoryMiB: 1024, gpus: 1 }, { memoryMiB: 4096, gpus: 0 }), { cpus: 2, memoryMiB: 4096 });
});

test.run();
