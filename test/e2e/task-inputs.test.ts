/**
 * Files between tasks, as far as the orchestrator goes: a task declares the artifacts of upstream
 * tasks it takes (`inputs`); submit refuses a `from` that is not upstream; a dependent is released
 * only once those files are AVAILABLE (refusal of a rejected file: test/runs/lifecycle-table.test.ts).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { expectError, gql, gqlOk } from "../support/graphql.js";
import { finishedWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";

const test = suite("task inputs: a dependent waits for the files it takes from upstream tasks");
let env: TestEnv;

const NODES = { a: "ti-auto-a", b: "ti-auto-b" } as const;
const POLICY: Record<string, string> = { [NODES.a]: "auto", [NODES.b]: "auto" };

/** Writes 2 MiB of random bytes to weights.bin. */
const TRAIN = `const fs = require('fs'), c = require('crypto'); const f = fs.openSync('weights.bin', 'w'); for (let i = 0; i < 2; i++) fs.writeSync(f, c.randomBytes(1048576)); fs.closeSync(f);`;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(Object.values(NODES));
  await registerNodeScriptTool(env.orchestrator.url, "ti-train", TRAIN, { outputs: ["weights.bin"] });
  await registerNodeScriptTool(env.orchestrator.url, "ti-aggregate", "0", {});
  for (const nodeId of Object.values(NODES)) {
    const file = join(env.sandboxRoot, `${nodeId}-policy.yaml`);
    await writeFile(file, `allow: any\noutputs: ${POLICY[nodeId]}\n`);
    await env.startAgent(nodeId, { env: { FEM_POLICY_FILE: file } });
  }
});

test.after(async () => env?.dispose());

const round = (trainNodes: string[], aggregateNode: string) => ({
  tasks: [
    { key: "train", tool: "ti-train@1.0.0", nodes: trainNodes },
    { key: "aggregate", tool: "ti-aggregate@1.0.0", nodes: [aggregateNode], dependsOn: ["train"], inputs: [{ from: "train", files: "weights.bin" }] },
  ],
});

test("submit refuses an input from a task that is not upstream, naming the field", async () => {
  const input = round([NODES.a], NODES.a);
  input.tasks.push({ key: "other", tool: "ti-train@1.0.0", nodes: [NODES.a], dependsOn: [], inputs: [{ from: "train", files: "weights.bin" }] } as never);
  const result = await gql(env.orchestrator.url, SUBMIT, { input });
  const extensions = expectError(result, "BAD_USER_INPUT", /tasks\[2\]\.inputs\[0\]\.from: task "other" takes files from "train", which is not one of its upstream tasks/);
  assert.is(extensions.from, "train");
  const fromNoOutputs = {
    tasks: [
      { key: "prep", tool: "ti-aggregate@1.0.0", nodes: [NODES.a] },
      { key: "use", tool: "ti-aggregate@1.0.0", nodes: [NODES.a], dependsOn: ["prep"], inputs: [{ from: "prep", files: "x" }] },
    ],
  };
  expectError(await gql(env.orchestrator.url, SUBMIT, { input: fromNoOutputs }), "BAD_USER_INPUT", /tasks\[1\]\.inputs\[0\]\.from: task "prep" runs ti-aggregate@1\.0\.0, which declares no outputs/);
  const [{ n }] = await env.sql<{ n: number }>(`select count(*)::int as n from workflow`);
  assert.is(n, 0);
});

test("releases the dependent only once both nodes' weights are AVAILABLE", async () => {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: round([NODES.a, NODES.b], NODES.a) });
  const workflow = await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id, 90_000);
  assert.is(workflow.state, "SUCCEEDED");
  const trainRuns = workflow.tasks.find((t) => t.key === "train")!.runs.map((r) => r.id);
  const aggregateRun = workflow.tasks.find((t) => t.key === "aggregate")!.runs[0]!.id;
  const stored = await env.sql<{ state: string; stored_at: Date }>(`select state, stored_at from artifact where run_id in (?, ?) and path = 'weights.bin'`, trainRuns);
  assert.equal(stored.map((s) => s.state), ["AVAILABLE", "AVAILABLE"]);
  const [{ queued_at }] = await env.sql<{ queued_at: Date }>(`select queued_at from run where id = ?`, [aggregateRun]);
  // Times are each transaction's start (now()): the release, in the transaction that stored the
  // last file, may carry a time a little before the other file's, stored by a shorter one.
  const lastStoredMs = Math.max(...stored.map((s) => new Date(s.stored_at).getTime()));
  assert.ok(new Date(queued_at).getTime() >= lastStoredMs - 1_000, `released at ${queued_at}, well before the last weights file was stored`);
  const finished = await env.sql<{ finished_at: Date }>(`select finished_at from run where id in (?, ?)`, trainRuns);
  for (const f of finished) assert.ok(new Date(queued_at) >= new Date(f.finished_at), "released before a train run finished");
});

test.run();
