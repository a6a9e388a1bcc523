import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { collect, gqlOk, wsClient } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { topics } from "../../src/live/topics.js";
import { waitUntil } from "../support/wait.js";

const test = suite("log lines at volume, replay and resume");
let env: TestEnv;
let runId: string;
const LINES = 10_000;

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a"]);
  await env.startAgent("site-a");
});

test.after(async () => env?.dispose());

test(`a run printing ${LINES} lines has every line stored, in order`, async () => {
  const tool = await registerNodeScriptTool(
    env.orchestrator.url,
    "many-lines",
    `const n = Number(process.argv[2]); let out = ''; for (let i = 1; i <= n; i++) out += 'line ' + i + '\\n'; process.stdout.write(out);`,
  );
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["site-a"], params: { value: "x", count: LINES } }] } });
  runId = data.submitWorkflow.tasks[0].runs[0].id;
  const started = Date.now();
  await waitUntil(async () => (await getWorkflow(env.orchestrator.url, data.submitWorkflow.id)).state === "SUCCEEDED", 60_000, "the run to finish");
  const [stats] = await env.sql<{ n: string; min: number; max: number; out: string }>(
    `select count(*) n, min(seq) min, max(seq) max, count(*) filter (where stream = 'STDOUT') out from log_line where run_id = ?`,
    [runId],
  );
  const total = Number(stats.n);
  assert.is(Number(stats.out), LINES);
  assert.is(stats.min, 1);
  assert.is(stats.max, total, "seq is gap-free");
  const lines = await env.sql<{ text: string }>(`select text from log_line where run_id = ? and stream = 'STDOUT' order by seq`, [runId]);
  assert.ok(lines.every((l, i) => l.text === `line ${i + 1}`));
  const [messages] = await env.sql<{ n: string }>(`select count(*) n from log_line where run_id = ?`, [runId]);
  assert.ok(Number(messages.n) > 0);
  console.log(`    (${LINES} lines stored ${Date.now() - started} ms after submit; ingestion: ${JSON.stringify(env.orchestrator.ingestion.stats())})`);
});

test("runLogs(afterSeq) replays from the cursor with no gap and no duplicate", async () => {
  const client = wsClient(env.orchestrator.wsUrl);
  try {
    const fromStart = collect<{ lines: { seq: number }[] }>(client, `subscription($id: ID!) { runLogs(runId: $id) { lines { seq } } }`, { id: runId }, "runLogs");
    const resumed = collect<{ lines: { seq: number }[] }>(client, `subscription($id: ID!) { runLogs(runId: $id, afterSeq: 4321) { lines { seq } } }`, { id: runId }, "runLogs");
    const [row] = await env.sql<{ n: number }>(`select log_line_count n from run where id = ?`, [runId]);
    await fromStart.waitFor((items) => items.flatMap((b) => b.lines).length >= row.n, 20_000, "the full replay");
    await resumed.waitFor((items) => items.flatMap((b) => b.lines).length >= row.n - 4321, 20_000, "the resumed replay");
    assert.equal(fromStart.items.flatMap((b) => b.lines.map((l) => l.seq)), Array.from({ length: row.n }, (_, i) => i + 1));
    assert.equal(resumed.items.flatMap((b) => b.lines.map((l) => l.seq)), Array.from({ length: row.n - 4321 }, (_, i) => 4322 + i));
    await fromStart.dispose();
    await resumed.dispose();
  } finally {
    await client.dispose();
  }
});

test("the runLogs query pages with afterSeq and first", async () => {
  const page = await gqlOk(env.orchestrator.url, `query($id: ID!) { runLogs(runId: $id, afterSeq: 10, first: 5) { nodes { seq } pageInfo { hasNextPage } } }`, { id: runId });
  assert.equal(page.runLogs.nodes.map((l: { seq: number }) => l.seq), [11, 12, 13, 14, 15]);
  assert.ok(page.runLogs.pageInfo.hasNextPage);
});

test("a subscriber joining mid-stream gets stored lines, then live ones, seamlessly", async () => {
  const tool = await registerNodeScriptTool(
    env.orchestrator.url,
    "slow-lines",
    `let i = 0; const t = setInterval(() => { i++; console.log('tick ' + i); if (i === 40) clearInterval(t); }, 25);`,
  );
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: ["site-a"] }] } });
  const id = data.submitWorkflow.tasks[0].runs[0].id;
  await waitUntil(async () => (await env.sql<{ n: number }>(`select log_line_count n from run where id = ?`, [id]))[0].n >= 10, 20_000, "some lines stored");
  const client = wsClient(env.orchestrator.wsUrl);
  try {
    const logs = collect<{ lines: { seq: number; text: string }[] }>(client, `subscription($id: ID!) { runLogs(runId: $id, afterSeq: 0) { lines { seq text } } }`, { id }, "runLogs");
    await env.orchestrator.pubsub.waitForSubscribers(topics.runLogs(id), 1, 10_000);
    await waitUntil(async () => (await getWorkflow(env.orchestrator.url, data.submitWorkflow.id)).state === "SUCCEEDED", 20_000, "the run to finish");
    const [row] = await env.sql<{ n: number }>(`select log_line_count n from run where id = ?`, [id]);
    await logs.waitFor((items) => items.flatMap((b) => b.lines).length >= row.n, 10_000, "every line");
    const seqs = logs.items.flatMap((b) => b.lines.map((l) => l.seq));
    assert.equal(seqs, Array.from({ length: row.n }, (_, i) => i + 1));
    await logs.dispose();
  } finally {
    await client.dispose();
  }
});

test.run();
