import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gql, gqlOk } from "../support/graphql.js";
import { getWorkflow, REGISTER_TOOL, registerNodeScriptTool, SUBMIT, TERMINAL, type WorkflowView } from "../support/fixtures.js";
import { waitUntil } from "../support/wait.js";

const test = suite("task graphs on real agents");
let env: TestEnv;
let dataDir: string;

// Writes result.json: its own name and, per upstream task, the names its runs reported.
const EMIT = `
const fs = require('fs');
const name = process.argv[1];
let upstream = {};
try { upstream = JSON.parse(fs.readFileSync('fem-inputs.json', 'utf8')).upstream; } catch {}
const seen = Object.fromEntries(Object.entries(upstream).map(([k, v]) => [k, v.map((x) => x.result.name)]));
console.log(name + ' saw ' + JSON.stringify(seen));
fs.writeFileSync('result.json', JSON.stringify({ name, seen }));
if (process.argv[2] === '1') process.exit(1);`;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a", "site-b"], 4);
  await Promise.all([env.startAgent("site-a", { capacity: 4 }), env.startAgent("site-b", { capacity: 4 })]);
  await registerNodeScriptTool(env.orchestrator.url, "emit", EMIT, { resultFile: "result.json" });
  dataDir = await mkdtemp(join(tmpdir(), "fem-fedavg-"));
});

test.after(async () => {
  await env?.dispose();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function finished(workflowId: string): Promise<WorkflowView> {
  return waitUntil(
    async () => {
      const workflow = await getWorkflow(env.orchestrator.url, workflowId);
      return TERMINAL.includes(workflow.state) ? workflow : undefined;
    },
    60_000,
    "the workflow to finish",
  );
}

async function times(workflowId: string): Promise<Record<string, { started: number; finished: number }>> {
  const rows = await env.sql<{ key: string; started: Date; finished: Date }>(
    `select t.key, min(r.started_at) started, max(r.finished_at) finished from run r join task t on t.id = r.task_id where r.workflow_id = ? group by t.key`,
    [workflowId],
  );
  return Object.fromEntries(rows.map((r) => [r.key, { started: new Date(r.started).getTime(), finished: new Date(r.finished).getTime() }]));
}

const emit = (key: string, extra: Record<string, unknown> = {}) => ({ key, tool: "emit@1.0.0", nodes: ["site-a"], params: { value: key }, ...extra });

test("a diamond A → B, C → D runs in order and D receives the results of B and C", async () => {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: {
      tasks: [
        emit("D", { dependsOn: ["B", "C"] }),
        emit("B", { dependsOn: ["A"], nodes: ["site-b"] }),
        emit("C", { dependsOn: ["A"] }),
        emit("A"),
      ],
    },
  });
  const workflow = await finished(data.submitWorkflow.id);
  assert.is(workflow.state, "SUCCEEDED");
  const t = await times(workflow.id);
  assert.ok(t.A.finished <= t.B.started && t.A.finished <= t.C.started, "B and C start after A ends");
  assert.ok(t.B.finished <= t.D.started && t.C.finished <= t.D.started, "D starts after B and C end");
  const d = workflow.tasks.find((task) => task.key === "D")!.runs[0];
  assert.equal(d.result, { name: "D", seen: { B: ["B"], C: ["C"] } });
  const graph = await gqlOk(env.orchestrator.url, `query($id: ID!) { workflow(id: $id) { tasks { key dependsOn { key } } } }`, { id: workflow.id });
  const deps = Object.fromEntries(graph.workflow.tasks.map((x: { key: string; dependsOn: { key: string }[] }) => [x.key, x.dependsOn.map((d) => d.key).sort()]));
  assert.equal(deps, { A: [], B: ["A"], C: ["A"], D: ["B", "C"] });
});

test("the federated average over two nodes' own data files gives the right number", async () => {
  const fileA = join(dataDir, "a.csv");
  const fileB = join(dataDir, "b.csv");
  await writeFile(fileA, "value\n" + Array.from({ length: 10 }, (_, i) => `${i + 1},x`).join("\n") + "\n");
  await writeFile(fileB, "100\n200\n\n0\n");
  const script = (name: string) => fileURLToPath(new URL(`../../scripts/sample-tools/${name}.js`, import.meta.url));
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
    input: {
      name: "fedavg-local",
      version: "1",
      executable: process.execPath,
      args: [
        { id: "script", type: "STRING", position: 0, default: script("fedavg-local") },
        { id: "data", type: "STRING", position: 1, prefix: "--data", required: true },
      ],
      resultFile: "result.json",
    },
  });
  await gqlOk(env.orchestrator.url, REGISTER_TOOL, {
    input: { name: "fedavg-aggregate", version: "1", executable: process.execPath, args: [{ id: "script", type: "STRING", position: 0, default: script("fedavg-aggregate") }], resultFile: "result.json" },
  });
  const data = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: {
      name: "federated average",
      tasks: [
        {
          key: "local",
          tool: "fedavg-local@1",
          nodes: ["site-a", "site-b"],
          nodeParams: [
            { node: "site-a", params: { data: fileA } },
            { node: "site-b", params: { data: fileB } },
          ],
        },
        { key: "aggregate", tool: "fedavg-aggregate@1", nodes: ["site-a"], dependsOn: ["local"] },
      ],
    },
  });
  const workflow = await finished(data.submitWorkflow.id);
  assert.is(workflow.state, "SUCCEEDED");
  const local = workflow.tasks.find((t) => t.key === "local")!.runs.map((r) => r.result as { count: number; mean: number });
  assert.equal(local.map((r) => r.count).sort(), [10, 3], "each node reports only its count and mean");
  const result = workflow.tasks.find((t) => t.key === "aggregate")!.runs[0].result as { count: number; mean: number };
  assert.is(result.count, 13);
  assert.ok(Math.abs(result.mean - 355 / 13) < 1e-9, `mean ${result.mean}`);
});

test("resubmitting with the same idempotency key returns the same workflow; different content is a CONFLICT", async () => {
  const input = { name: "once", idempotencyKey: "key-1", tasks: [emit("only")] };
  const first = await gqlOk(env.orchestrator.url, SUBMIT, { input });
  const again = await gqlOk(env.orchestrator.url, SUBMIT, { input });
  assert.is(again.submitWorkflow.id, first.submitWorkflow.id);
  const different = await gql(env.orchestrator.url, SUBMIT, { input: { ...input, tasks: [emit("other")] } });
  assert.is(different.errors?.[0].extensions?.code, "CONFLICT");
  assert.match(different.errors![0].message, /key-1/);
  const [row] = await env.sql<{ n: string }>(`select count(*) n from workflow where idempotency_key = 'key-1'`);
  assert.is(Number(row.n), 1);
  await finished(first.submitWorkflow.id);
});

test("a failing upstream under the 'all' policy skips its dependents", async () => {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: {
      tasks: [
        emit("up", { nodes: ["site-a", "site-b"], nodeParams: [{ node: "site-b", params: { count: 1 } }] }),
        emit("down", { dependsOn: ["up"] }),
        emit("further", { dependsOn: ["down"] }),
      ],
    },
  });
  const workflow = await finished(data.submitWorkflow.id);
  const state = Object.fromEntries(workflow.tasks.map((t) => [t.key, t.state]));
  assert.equal(state, { up: "FAILED", down: "SKIPPED", further: "SKIPPED" });
  assert.is(workflow.state, "FAILED");
  assert.ok(workflow.tasks.find((t) => t.key === "further")!.runs.every((r) => r.state === "SKIPPED"));
});

test("under 'k of n' one failing node still lets the task and the workflow succeed", async () => {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: {
      tasks: [
        emit("up", { nodes: ["site-a", "site-b"], minSucceeded: 1, nodeParams: [{ node: "site-b", params: { count: 1 } }] }),
        emit("down", { dependsOn: ["up"] }),
      ],
    },
  });
  const workflow = await finished(data.submitWorkflow.id);
  assert.is(workflow.state, "SUCCEEDED");
  const up = workflow.tasks.find((t) => t.key === "up")!;
  assert.is(up.state, "SUCCEEDED");
  assert.equal(up.runs.map((r) => r.state).sort(), ["FAILED", "SUCCEEDED"]);
  const down = workflow.tasks.find((t) => t.key === "down")!.runs[0];
  assert.equal((down.result as { seen: unknown }).seen, { up: ["up"] }, "only successful upstream results are handed down");
});

// Fails the first time it sees its marker path, succeeds afterwards.
const FLAKY = `
const fs = require('fs');
const marker = process.argv[1];
if (!fs.existsSync(marker)) { fs.writeFileSync(marker, 'failed once'); console.error('failing this time'); process.exit(1); }
console.log('succeeding now');
fs.writeFileSync('result.json', JSON.stringify({ name: 'flaky', seen: {} }));`;

test("retryTask re-runs a finished task and what depended on it", async () => {
  const tool = await registerNodeScriptTool(env.orchestrator.url, "flaky", FLAKY, { resultFile: "result.json" });
  const marker = join(dataDir, "flaky-manual");
  const data = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: { tasks: [{ key: "first", tool, nodes: ["site-a"], params: { value: marker } }, emit("second", { dependsOn: ["first"] })] },
  });
  const failed = await finished(data.submitWorkflow.id);
  assert.is(failed.state, "FAILED");
  const conflict = await gql(env.orchestrator.url, `mutation($id: ID!) { retryTask(id: $id) { id } }`, { id: failed.tasks.find((t) => t.key === "second")!.id });
  assert.is(conflict.errors?.[0].extensions?.code, "CONFLICT", "a task whose upstream failed cannot be retried alone");
  const first = failed.tasks.find((t) => t.key === "first")!;
  await gqlOk(env.orchestrator.url, `mutation($id: ID!) { retryTask(id: $id) { state } }`, { id: first.id });
  const again = await waitUntil(
    async () => {
      const w = await getWorkflow(env.orchestrator.url, failed.id);
      return TERMINAL.includes(w.state) && w.tasks.every((t) => t.runs.length === 2) ? w : undefined;
    },
    30_000,
    "the retried workflow to finish",
  );
  assert.is(again.state, "SUCCEEDED");
  assert.equal(again.tasks.find((t) => t.key === "first")!.runs.map((r) => [r.attempt, r.state]), [[1, "FAILED"], [2, "SUCCEEDED"]]);
  assert.equal(again.tasks.find((t) => t.key === "second")!.runs.map((r) => [r.attempt, r.state]), [[1, "SKIPPED"], [2, "SUCCEEDED"]]);
});

test("a retry policy that lists EXIT_CODE starts a new attempt after the backoff; without it a non-zero exit is final", async () => {
  const tool = "flaky@1.0.0";
  const withPolicy = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: { tasks: [{ key: "t", tool, nodes: ["site-a"], params: { value: join(dataDir, "flaky-auto") }, retry: { maxAttempts: 3, backoffSeconds: 0.2, retryOn: ["EXIT_CODE"] } }] },
  });
  const without = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: { tasks: [{ key: "t", tool, nodes: ["site-a"], params: { value: join(dataDir, "flaky-none") }, retry: { maxAttempts: 3 } }] },
  });
  const retried = await finished(withPolicy.submitWorkflow.id);
  assert.is(retried.state, "SUCCEEDED");
  assert.equal(retried.tasks[0].runs.map((r) => [r.attempt, r.state, r.failureReason]), [[1, "FAILED", "EXIT_CODE"], [2, "SUCCEEDED", null]]);
  const final = await finished(without.submitWorkflow.id);
  assert.is(final.state, "FAILED");
  assert.is(final.tasks[0].runs.length, 1);
});

test.run();
