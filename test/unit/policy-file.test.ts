import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readPolicy } from "../../src/agent/policy.js";
import { loadPolicyFile, pinTool } from "../../src/agent/policy-file.js";

const test = suite("policy file: YAML, and pins added by fem-agent policy add");
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const D3 = `sha256:${"3".repeat(64)}`;
let dir: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "fem-policy-unit-"));
});
test.after(async () => rm(dir, { recursive: true, force: true }));

test("the agent reads a YAML policy as it reads a JSON one", async () => {
  const yaml = join(dir, "policy.yaml");
  await writeFile(yaml, `# pinned after review\nallow: any\ntools:\n  - name: stats\n    version: "1"\n    digest: ${D1}\n  - { name: qc, digests: [${D1}, ${D2}] }\n`);
  assert.equal(await readPolicy(yaml), { allowAny: true, tools: [{ name: "stats", version: "1", digests: [D1] }, { name: "qc", version: null, digests: [D1, D2] }], datasets: [], outputs: "review", logs: "stream" });
  const json = join(dir, "policy.json");
  await writeFile(json, JSON.stringify({ tools: [{ name: "stats", version: "1", digest: D1 }] }));
  assert.equal(await readPolicy(json), { allowAny: false, tools: [{ name: "stats", version: "1", digests: [D1] }], datasets: [], outputs: "review", logs: "stream" });
  const broken = join(dir, "broken.yml");
  await writeFile(broken, "tools: [\n");
  await readPolicy(broken).then(
    () => assert.unreachable("a broken file is refused"),
    (err: Error) => assert.match(err.message, /FEM_POLICY_FILE .*broken\.yml cannot be parsed as YAML or JSON/),
  );
});

test("a pin is appended, keeping the operator's entries and comments; pinning again changes nothing", async () => {
  const file = join(dir, "keep.yaml");
  const original = `# Reviewed by the site's operator, 2024.\ntools:\n  - name: keep-me # do not remove\n    digest: ${D3}\n`;
  await writeFile(file, original, { mode: 0o640 });
  assert.equal(await pinTool(file, { name: "stats", version: "1", digest: D1 }), { kind: "added" });
  const text = await readFile(file, "utf8");
  assert.ok(text.startsWith(original), text);
  assert.match(text, /- name: stats\n {4}version: "1"\n {4}digest: sha256:1{64}\n$/);
  assert.is((await stat(file)).mode & 0o777, 0o640, "the file keeps its mode");
  assert.equal(await pinTool(file, { name: "stats", version: "1", digest: D1 }), { kind: "unchanged" });
  assert.equal(await pinTool(file, { name: "keep-me", version: "7", digest: D3 }), { kind: "unchanged" }, "a name-wide pin already covers it");
  assert.equal((await loadPolicyFile(file)).tools.map((t) => t.name), ["keep-me", "stats"]);
  assert.equal((await readdir(dir)).filter((n) => n.endsWith(".tmp")), [], "no temporary file left");
});

test("the pin of the same name@version is updated; a JSON file stays JSON; a new file is created", async () => {
  const file = join(dir, "update.json");
  await writeFile(file, JSON.stringify({ tools: [{ name: "stats", version: "1", digests: [D1, D2] }, { name: "other", digest: D3 }] }));
  assert.equal(await pinTool(file, { name: "stats", version: "1", digest: D3 }), { kind: "updated", replaced: [D1, D2] });
  assert.equal(JSON.parse(await readFile(file, "utf8")), { tools: [{ name: "stats", version: "1", digest: D3 }, { name: "other", digest: D3 }] });
  const fresh = join(dir, "fresh.yaml");
  assert.equal(await pinTool(fresh, { name: "stats", version: "2", digest: D2 }), { kind: "added" });
  assert.equal(await readPolicy(fresh), { allowAny: false, tools: [{ name: "stats", version: "2", digests: [D2] }], datasets: [], outputs: "review", logs: "stream" });
  const empty = join(dir, "empty.yaml");
  await writeFile(empty, "tools: []\n");
  await pinTool(empty, { name: "stats", version: "2", digest: D2 });
  assert.match(await readFile(empty, "utf8"), /^tools:\n {2}- name: stats\n/);
});

test("an invalid policy file is left as it is", async () => {
  const file = join(dir, "invalid.yaml");
  const original = "allow: everything\ntools: []\n";
  await writeFile(file, original);
  await pinTool(file, { name: "stats", version: "1", digest: D1 }).then(
    () => assert.unreachable("an invalid file is not rewritten"),
    (err: Error) => assert.match(err.message, /is invalid, so it is left as it is: allow/),
  );
  assert.is(await readFile(file, "utf8"), original);
});

test("outputs says who releases the node's outputs (review when absent), logs whether stdout/stderr stream (stream when absent); nothing else is accepted", async () => {
  const local = join(dir, "outputs-local.yaml");
  await writeFile(local, "outputs: local\nlogs: system-only\n");
  const policy = await readPolicy(local);
  assert.equal([policy.outputs, policy.logs], ["local", "system-only"]);
  const wrong = join(dir, "outputs-wrong.yaml");
  await writeFile(wrong, "outputs: everyone\nlogs: some\n");
  await readPolicy(wrong).then(
    () => assert.unreachable("an unknown outputs or logs policy is refused"),
    (err: Error) => assert.match(err.message, /outputs: outputs may only be auto, review, local; logs: logs may only be stream, system-only/),
  );
});

test.run();
