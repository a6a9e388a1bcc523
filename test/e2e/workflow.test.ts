import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Client } from "graphql-ws";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { collect, gqlOk, wsClient } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { topics } from "../../src/live/topics.js";

const test = suite("a federated workflow on two real agents");
let env: TestEnv;
let client: Client;

// Prints `count` numbered lines on stdout (and every 10th on stderr), a little at a time.
const PRINTER = `
const [label, count] = process.argv.slice(1);
let i = 0;
const tick = () => {
  for (let k = 0; k < 5 && i < Number(count); k++) {
    i++;
    console.log(label + ' line ' + i);
    if (i % 10 === 0) console.error(label + ' progress ' + i);
  }
  if (i < Number(count)) setTimeout(tick, 5); else require('fs').writeFileSync('result.json', JSON.stringify({ label, lines: i }));
};
tick();`;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a", "site-b"]);
  client = wsClient(env.orchestrator.wsUrl);
});

test.after(async () => {
  await client?.dispose();
  await env?.dispose();
});

test("runs on both nodes to SUCCEEDED while a subscriber sees every state change and log line in order", async () => {
  const tool = await registerNodeScriptTool(env.orchestrator.url, "printer", PRINTER, { resultFile: "result.json" });
  // Submitted before the agents start, so the subscriber is in place before anything runs.
  const submitted = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: {
      tasks: [
        {
          key: "print",
          tool,
          nodes: ["site-a", "site-b"],
          params: { count: 60 },
          nodeParams: [
            { node: "site-a", params: { value: "A" } },
            { node: "site-b", params: { value: "B" } },
          ],
        },
      ],
    },
  });
  const workflowId: string = submitted.submitWorkflow.id;
  const runs: { id: string; node: { id: string } }[] = submitted.submitWorkflow.tasks[0].runs;
  const events = collect<{ kind: string; state: string; runId: string | null }>(
    client,
    `subscription($id: ID!) { workflowEvents(workflowId: $id) { kind state runId taskId run { attempt } } }`,
    { id: workflowId },
    "workflowEvents",
  );
  const logs = runs.map((run) =>
    collect<{ runId: string; lines: { seq: number; stream: string; text: string }[] }>(
      client,
      `subscription($id: ID!) { runLogs(runId: $id, afterSeq: 0) { runId lines { seq stream text } } }`,
      { id: run.id },
      "runLogs",
    ),
  );
  await env.orchestrator.pubsub.waitForSubscribers(topics.workflow(workflowId), 1, 10_000);
  for (const run of runs) await env.orchestrator.pubsub.waitForSubscribers(topics.runLogs(run.id), 1, 10_000);

  await Promise.all([env.startAgent("site-a"), env.startAgent("site-b")]);
  await events.waitFor((items) => items.some((e) => e.kind === "WORKFLOW" && e.state === "SUCCEEDED"), 60_000, "the workflow to succeed");

  for (const run of runs) {
    const states = events.items.filter((e) => e.kind === "RUN" && e.runId === run.id).map((e) => e.state);
    assert.equal(states, ["ACCEPTED", "RUNNING", "SUCCEEDED"], `run on ${run.node.id}`);
  }
  assert.is(events.items.at(-1)!.kind, "WORKFLOW");

  const workflow = await getWorkflow(env.orchestrator.url, workflowId);
  assert.is(workflow.state, "SUCCEEDED");
  for (const [i, run] of runs.entries()) {
    const stored = workflow.tasks[0].runs.find((r) => r.id === run.id)!;
    const label = run.node.id === "site-a" ? "A" : "B";
    await logs[i].waitFor((batches) => batches.flatMap((b) => b.lines).length >= stored.logLineCount, 10_000, "every stored line live");
    const lines = logs[i].items.flatMap((b) => b.lines);
    assert.equal(lines.map((l) => l.seq), Array.from({ length: lines.length }, (_, k) => k + 1), "gap-free, in order, no duplicate");
    assert.is(lines.length, stored.logLineCount);
    const stdout = lines.filter((l) => l.stream === "STDOUT").map((l) => l.text);
    assert.equal(stdout, Array.from({ length: 60 }, (_, k) => `${label} line ${k + 1}`));
    assert.is(lines.filter((l) => l.stream === "STDERR").length, 6);
    assert.ok(lines.some((l) => l.stream === "SYSTEM"), "the agent adds SYSTEM lines");
    assert.ok(logs[i].items.length < lines.length / 2, `lines arrive batched (${logs[i].items.length} batches for ${lines.length} lines)`);
    assert.is(stored.exitCode, 0);
    assert.equal(stored.result, { label, lines: 60 });
    assert.ok(stored.usage.wallMs! > 0, "wall time recorded");
    assert.ok(stored.usage.peakRssBytes! > 0, "peak memory recorded");
    assert.ok(stored.usage.cpuUserMs! + stored.usage.cpuSystemMs! > 0, "CPU time recorded");
    assert.ok(stored.usage.logBytes! > 0);
  }
  for (const c of [events, ...logs]) await c.dispose();
});

test("runUpdated streams one run's transitions and nodeUpdated reports the nodes online", async () => {
  const nodes = await gqlOk(env.orchestrator.url, `{ nodes { nodes { id connectivity health { cpus agentVersion } lastHeartbeatAt } } }`);
  for (const node of nodes.nodes.nodes) {
    assert.is(node.connectivity, "ONLINE");
    assert.ok(node.health.cpus > 0);
  }
  const tool = await registerNodeScriptTool(env.orchestrator.url, "short", "setTimeout(() => console.log('done'), 300)");
  const submitted = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "s", tool, nodes: ["site-a"] }] } });
  const runId = submitted.submitWorkflow.tasks[0].runs[0].id;
  const updates = collect<{ state: string }>(client, `subscription($id: ID!) { runUpdated(runId: $id) { id state node { id } task { key } } }`, { id: runId }, "runUpdated");
  await updates.waitFor((items) => items.some((u) => u.state === "SUCCEEDED"), 30_000, "the run to succeed");
  assert.is(updates.items.at(-1)!.state, "SUCCEEDED");
  await updates.dispose();
});

test("taskLogs replays the lines of every run of a task, each run's in order", async () => {
  const [task] = await env.sql<{ id: string }>(`select t.id from task t join tool tl on tl.id = t.tool_id where tl.name = 'printer'`);
  const runs = await env.sql<{ id: string; n: number }>(`select id, log_line_count n from run where task_id = ?`, [task.id]);
  const logs = collect<{ runId: string; lines: { seq: number }[] }>(client, `subscription($id: ID!) { taskLogs(taskId: $id) { runId lines { seq } } }`, { id: task.id }, "taskLogs");
  const total = runs.reduce((sum, r) => sum + r.n, 0);
  await logs.waitFor((items) => items.flatMap((b) => b.lines).length >= total, 10_000, "every line of both runs");
  for (const run of runs) {
    const seqs = logs.items.filter((b) => b.runId === run.id).flatMap((b) => b.lines.map((l) => l.seq));
    assert.equal(seqs, Array.from({ length: run.n }, (_, i) => i + 1));
  }
  await logs.dispose();
});

test("accounting sums the finished runs by node, by tool and by day", async () => {
  const byNode = await gqlOk(env.orchestrator.url, `{ accounting(groupBy: [NODE]) { node runs succeeded wallMs cpuUserMs maxPeakRssBytes logBytes } }`);
  const rows = byNode.accounting as { node: string; runs: number; succeeded: number; wallMs: number; logBytes: number }[];
  assert.equal(rows.map((r) => r.node), ["site-a", "site-b"]);
  const [stored] = await env.sql<{ runs: string; wall: number; logs: number }>(
    `select count(*) runs, sum(wall_ms) wall, sum(log_bytes) logs from run where node_id = 'site-a' and finished_at is not null`,
  );
  assert.is(rows[0].runs, Number(stored.runs));
  assert.ok(Math.abs(rows[0].wallMs - stored.wall) < 1e-6);
  assert.is(rows[0].logBytes, stored.logs);
  const byToolDay = await gqlOk(env.orchestrator.url, `{ accounting(groupBy: [TOOL, DAY], filter: { tools: ["printer"] }) { tool day runs succeeded } }`);
  assert.equal(byToolDay.accounting, [{ tool: "printer@1.0.0", day: new Date().toISOString().slice(0, 10), runs: 2, succeeded: 2 }]);
});

test.run();
