/**
 * Ingestion stores a batch of log lines only while it prepares the next one (two transactions in
 * flight): a flood of lines is stored with transactions overlapping, every line once and counted
 * once, and a run's terminal state is stored only after every line published before it, whatever
 * transaction holds them. Near the per-run cap the overlapping transactions still truncate the log
 * once, at the cap.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createEventPublisher, type EventPublisher } from "../support/amqp.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { scrape } from "../support/prometheus.js";
import { waitUntil } from "../support/wait.js";

const test = suite("ingestion: log transactions side by side");
const nodeId = "site-l";
const MAX_LOG_BYTES = 400_000;
/** Log messages of a flood (the most lines a message may hold): three transactions of 10,000 lines, the most one takes. */
const BATCHES = 15;
const LINES_PER_BATCH = 2_000;
let env: TestEnv;
let events: EventPublisher;
let tool: string;

test.before(async () => {
  env = await createTestEnv({ maxLogBytesPerRun: MAX_LOG_BYTES });
  await env.registerNodes([nodeId], 50);
  tool = await registerNodeScriptTool(env.orchestrator.url, "echo", "console.log('hi')");
  events = await createEventPublisher(await env.nodeAmqpUrl(nodeId));
  // What each run's terminal state found stored, at the moment it was stored.
  await env.sql(`create table lines_at_end (run_id uuid primary key, lines int not null)`);
  await env.sql(`create function note_lines_at_end() returns trigger language plpgsql as $$
    begin
      insert into lines_at_end values (new.id, (select count(*) from log_line where run_id = new.id)) on conflict do nothing;
      return new;
    end $$`);
  await env.sql(`create trigger note_lines_at_end after update of state on run for each row when (new.state = 'SUCCEEDED') execute function note_lines_at_end()`);
});

test.after(async () => {
  await events?.close();
  await env?.dispose();
});

const at = () => new Date().toISOString();

async function runningRun(): Promise<string> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: [nodeId] }] } });
  const runId: string = data.submitWorkflow.tasks[0].runs[0].id;
  await waitUntil(async () => (await env.sql(`select 1 from run where id = ? and state = 'QUEUED'`, [runId])).length > 0, 10_000, "the run to be queued");
  await events.publish({ type: "run.state", v: 1, nodeId, runId, attempt: 1, state: "RUNNING", at: at() });
  await waitUntil(async () => (await env.sql(`select 1 from run where id = ? and state = 'RUNNING'`, [runId])).length > 0, 10_000, "the run to be RUNNING");
  return runId;
}

/**
 * Publishes `BATCHES` log batches of a run without waiting between them, then one more line and its
 * SUCCEEDED: the last large transaction of lines may still be storing when the small one that holds
 * the SUCCEEDED is taken.
 */
async function flood(runId: string, lineBytes: number): Promise<number> {
  const published: Promise<void>[] = [];
  const line = (seq: number) => ({ seq, stream: "STDOUT", at: at(), text: String(seq).padEnd(lineBytes, ".") });
  for (let b = 0; b < BATCHES; b++) {
    const lines = Array.from({ length: LINES_PER_BATCH }, (_, i) => line(b * LINES_PER_BATCH + i + 1));
    published.push(events.publish({ type: "run.logs", v: 1, nodeId, runId, attempt: 1, lines }));
  }
  const total = BATCHES * LINES_PER_BATCH + 1;
  published.push(events.publish({ type: "run.logs", v: 1, nodeId, runId, attempt: 1, lines: [line(total)] }));
  await Promise.all(published);
  await events.publish({ type: "run.state", v: 1, nodeId, runId, attempt: 1, state: "SUCCEEDED", at: at(), exitCode: 0 });
  return total;
}

async function finished(runId: string) {
  return waitUntil(
    async () => {
      const [row] = await env.sql<{ state: string; log_line_count: number; log_bytes: number; log_truncated_seq: number | null }>(
        `select state, log_line_count, log_bytes, log_truncated_seq from run where id = ?`,
        [runId],
      );
      return row.state === "SUCCEEDED" ? row : undefined;
    },
    60_000,
    "the run to succeed",
  );
}

const metricsUrl = () => env.orchestrator.url.replace(/\/graphql$/, "/metrics");

test("floods of lines are stored by overlapping transactions, each line once, all before their run's end", async () => {
  const before = await scrape(metricsUrl());
  for (let i = 0; i < 3; i++) {
    const runId = await runningRun();
    // 30,001 lines of 10 B: 300,010 bytes, under the cap.
    const total = await flood(runId, 10);
    const row = await finished(runId);
    const [stored] = await env.sql<{ lines: number; distinct_seqs: number; max_seq: number }>(
      `select count(*)::int as lines, count(distinct seq)::int as distinct_seqs, max(seq) as max_seq from log_line where run_id = ?`,
      [runId],
    );
    assert.equal(stored, { lines: total, distinct_seqs: total, max_seq: total }, "every line once");
    assert.is(row.log_line_count, total, "counted once each");
    assert.is(Number(row.log_bytes), total * 10);
    const [end] = await env.sql<{ lines: number }>(`select lines from lines_at_end where run_id = ?`, [runId]);
    assert.is(end.lines, total, "when SUCCEEDED was stored, every line published before it already was");
  }
  const after = await scrape(metricsUrl());
  const overlapped = (m: typeof after) => m.value("fem_ingestion_log_transactions_total", { kind: "overlapped" }) ?? 0;
  assert.ok(overlapped(after) > overlapped(before), "some log transactions ran beside the next one");
});

test("overlapping transactions near the cap truncate the log once, at the cap, and count what they stored", async () => {
  const runId = await runningRun();
  // 30,001 lines of 20 B: 600,020 bytes against a 400,000-byte cap.
  await flood(runId, 20);
  const row = await finished(runId);
  assert.ok(row.log_truncated_seq !== null, "the log was truncated");
  const [stored] = await env.sql<{ lines: number; kept: number; above: number }>(
    `select count(*)::int as lines,
            coalesce(sum(octet_length(text)) filter (where seq < ?), 0)::int as kept,
            count(*) filter (where seq > ?)::int as above
     from log_line where run_id = ?`,
    [row.log_truncated_seq, row.log_truncated_seq, runId],
  );
  assert.is(row.log_line_count, stored.lines, "the run counts exactly the lines stored");
  assert.ok(stored.kept <= MAX_LOG_BYTES, `${stored.kept} bytes kept below the notice, within the cap`);
  assert.ok(stored.kept > MAX_LOG_BYTES - 2 * 20, `${stored.kept} bytes kept: the log fills up to the cap`);
  assert.is(stored.above, 0, "nothing stored past the notice");
});

test.run();
