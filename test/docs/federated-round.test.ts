/**
 * examples/federated-round, run as docs/agents.md tells a user to: two hospitals train and release
 * their weights automatically (the example's node policy), the aggregator on hospital-a receives
 * both in its sandbox and averages them, and the researcher downloads the new model over HTTP,
 * whole and resumed with a Range request, with its digest.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { finishedWorkflow } from "../support/fixtures.js";
import { gqlOk, TEST_ADMIN_SUBJECT, TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { runScript } from "../support/script.js";
import { waitUntil } from "../support/wait.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const EXAMPLE = join(ROOT, "examples", "federated-round");
const SAMPLE_TOOLS = fileURLToPath(new URL("../../scripts/sample-tools", import.meta.url));

const test = suite("examples/federated-round: weights between nodes, a model to download");
let env: TestEnv;

async function graphql<T = any>(operation: string, variables: string): Promise<T> {
  const result = await runScript(join(ROOT, "examples", "graphql.mjs"), [join(ROOT, "examples", operation), variables], { FEM_URL: env.orchestrator.url, FEM_TOKEN: TEST_ADMIN_TOKEN });
  assert.is(result.code, 0, `${operation}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

test.before(async () => {
  env = await createTestEnv();
  for (const id of ["hospital-a", "hospital-b"]) await gqlOk(env.orchestrator.url, `mutation($id: ID!) { registerNode(input: { id: $id }) { node { id } } }`, { id });
  await gqlOk(env.orchestrator.url, `mutation { createProject(input: { name: "oncology" }) { name } }`);
  await gqlOk(env.orchestrator.url, `mutation($s: String!) { addProjectMember(project: "oncology", subject: $s, role: OWNER) { role } }`, { s: TEST_ADMIN_SUBJECT });
  for (const node of ["hospital-a", "hospital-b"]) await gqlOk(env.orchestrator.url, `mutation($n: ID!) { addProjectNode(project: "oncology", nodeId: $n) { name } }`, { n: node });
  const policy = join(EXAMPLE, "node-policy.yaml");
  await Promise.all(["hospital-a", "hospital-b"].map((id) => env.startAgent(id, { env: { FEM_POLICY_FILE: policy } })));
});

test.after(async () => env?.dispose());

test("the round runs as written: both weights reach the aggregator, and the model downloads whole and by Range with its digest", async () => {
  for (const tool of ["train.tool.json", "aggregate.tool.json"]) {
    const variables = (await readFile(join(EXAMPLE, tool), "utf8")).replaceAll("/opt/fem/tools", SAMPLE_TOOLS);
    await graphql("register-tool.graphql", variables);
  }
  const { submitWorkflow } = await graphql("submit-workflow.graphql", await readFile(join(EXAMPLE, "workflow.json"), "utf8"));
  const workflow = await finishedWorkflow(env.orchestrator.url, submitWorkflow.id, 120_000);
  const aggregate = workflow.tasks.find((t) => t.key === "aggregate")!.runs[0]!;
  assert.is(workflow.state, "SUCCEEDED", `aggregate: ${aggregate.message}`);
  // The run succeeds first; its released model is sent after that, so wait for it to arrive.
  const view = await waitUntil(async () => {
    const run = (await gqlOk(env.orchestrator.url, `query($id: ID!) { run(id: $id) { result outputs { path sha256 sizeBytes state downloadUrl } } }`, { id: aggregate.id })).run;
    return run.outputs.some((o: { path: string; state: string }) => o.path === "model.bin" && o.state === "AVAILABLE") ? run : undefined;
  }, 60_000, "the aggregator's model.bin AVAILABLE");
  const trained = workflow.tasks.find((t) => t.key === "train")!.runs;
  const released = await env.sql<{ node_id: string; sha256: string }>(`select r.node_id, a.sha256 from artifact a join run r on r.id = a.run_id where r.id in (?, ?) order by r.node_id`, trained.map((r) => r.id));
  assert.equal(
    view.result.inputs.map((i: { node: string; sha256: string }) => [i.node, i.sha256]),
    released.map((r) => [r.node_id, r.sha256]),
    "the aggregator saw both released weights files, with the checksums the orchestrator stored",
  );
  const model = view.outputs.find((o: { path: string }) => o.path === "model.bin");
  assert.is(model.state, "AVAILABLE");
  assert.is(model.sha256, view.result.model.sha256);
  const get = async (headers: Record<string, string> = {}) => {
    const response = await fetch(new URL(model.downloadUrl, env.orchestrator.url), { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...headers }, signal: AbortSignal.timeout(30_000) });
    return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
  };
  const whole = await get();
  assert.is(whole.status, 200);
  assert.is(createHash("sha256").update(whole.body).digest("hex"), model.sha256);
  assert.is(whole.headers.get("repr-digest"), `sha-256=:${Buffer.from(model.sha256, "hex").toString("base64")}:`);
  const floats = new Float32Array(whole.body.buffer, whole.body.byteOffset, whole.body.length / 4);
  assert.is(floats[5], 2 * 6, "the mean of scale 1 and scale 3");
  const first = await get({ range: "bytes=0-999999" });
  const rest = await get({ range: "bytes=1000000-", "if-range": whole.headers.get("etag")! });
  assert.equal([first.status, rest.status], [206, 206]);
  assert.is(createHash("sha256").update(Buffer.concat([first.body, rest.body])).digest("hex"), model.sha256);
});

test.run();
