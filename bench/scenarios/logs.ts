/**
 * Logs: a real process under a real agent prints `lines` lines of 100 B; the scenario waits until all
 * are stored and every one of `subscribers` live `runLogs` subscribers (on a worker thread) has them
 * all, in order, once each. Beside a raw multi-row INSERT of as many rows in the same run.
 */
import { createTestEnv } from "../../test/support/env.js";
import { registerNodeScriptTool, SUBMIT } from "../../test/support/fixtures.js";
import { gqlOk } from "../../test/support/graphql.js";
import { waitUntil } from "../../test/support/wait.js";
import { startSubscribers } from "../subscribers.js";
import { flag, load1, rate, rawInsertBaseline, type ScenarioResult } from "../lib.js";

/** Prints argv's last number of lines: an 8-digit number, a space and 91 bytes of padding (100 B with the newline). */
const PRINTER = `const n = Number(process.argv.at(-1)); const pad = "x".repeat(91); let s = ""; for (let i = 1; i <= n; i++) { s += String(i).padStart(8, "0") + " " + pad + "\\n"; if (s.length > 65536) { process.stdout.write(s); s = ""; } } process.stdout.write(s);`;

export async function logsScenario(args: string[]): Promise<ScenarioResult> {
  const lines = flag(args, "lines", 200_000);
  const subscriberCount = flag(args, "log-subscribers", 10);
  const before = load1();
  const env = await createTestEnv({ relayPollMs: 500, schedulerPollMs: 500, maxSocketsPerUser: subscriberCount + 10 });
  try {
    await env.registerNodes(["bench-g"], 2);
    const tool = await registerNodeScriptTool(env.orchestrator.url, "printer", PRINTER);
    const raw = await rawInsertBaseline(env.db.url, lines);
    await env.startAgent("bench-g", { capacity: 2 });

    const started = performance.now();
    const submitted = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "print", tool, nodes: ["bench-g"], params: { value: String(lines) } }] } });
    const runId: string = submitted.submitWorkflow.tasks[0].runs[0].id;
    const subscribers = startSubscribers({
      wsUrl: env.orchestrator.wsUrl,
      query: `subscription($id: ID!) { runLogs(runId: $id, afterSeq: 0) { lines { seq text } } }`,
      variables: { id: runId },
      field: "runLogs",
      count: subscriberCount,
      expected: lines,
      timeoutMs: 600_000,
    });
    await waitUntil(async () => (await env.sql<{ n: number }>(`select log_line_count n from run where id = ?`, [runId]))[0].n >= lines, 600_000, "every line stored", 10);
    const storedMs = performance.now() - started;
    const delivered = await subscribers.done;
    const deliveredMs = performance.now() - started;
    const [run] = await env.sql<{ n: string; max: number; distinct: string; stdout: string; ran_ms: number; start_ms: number }>(
      `select count(*) n, max(seq) max, count(distinct seq) distinct, count(*) filter (where stream = 'STDOUT') stdout,
         (select extract(epoch from finished_at - started_at) * 1000 from run where id = ?)::float8 ran_ms,
         (select extract(epoch from started_at - created_at) * 1000 from run where id = ?)::float8 start_ms
       from log_line where run_id = ?`,
      [runId, runId, runId],
    );
    // The agent adds SYSTEM lines of its own: every printed line once, and seq gap-free over all.
    const stored = Number(run.stdout) === lines && run.max === Number(run.n) && Number(run.distinct) === Number(run.n);
    const complete = delivered.received.every((n) => n >= lines) && delivered.problems.length === 0;
    const linesPerSecond = rate(lines, deliveredMs);
    const ratioToRaw = linesPerSecond / raw;
    return {
      name: "logs",
      title: `Logs: ${lines.toLocaleString("en")} lines × 100 B printed under a real agent → stored and delivered to ${subscriberCount} live subscribers`,
      figures: [
        {
          label: `lines/s stored and delivered to ${subscriberCount} subscribers`,
          value: linesPerSecond,
          unit: "lines/s",
          baseline: { label: "multi-row INSERT, 1,000 rows per statement", value: raw },
          target: "≥ 50,000 lines/s and ≥ 50 % of raw",
          met: linesPerSecond >= 50_000 && ratioToRaw >= 0.5 && stored && complete,
        },
        { label: "lines/s stored (no subscriber counted)", value: rate(lines, storedMs), unit: "lines/s" },
      ],
      breakdown: [
        { label: "submit → process started", ms: Math.round(Number(run.start_ms)) },
        { label: "process printing (agent reads as it prints)", ms: Math.round(Number(run.ran_ms)) },
        { label: "process end → last line stored", ms: Math.max(0, Math.round(storedMs - Number(run.start_ms) - Number(run.ran_ms))) },
        { label: "stored → last subscriber has all", ms: Math.round(deliveredMs - storedMs) },
      ],
      notes: [
        `stored: ${stored ? `every printed line once (${run.stdout} STDOUT lines), seq 1..${run.max} gap-free` : `NOT complete (${run.n} rows, ${run.stdout} STDOUT, max seq ${run.max}, ${run.distinct} distinct)`}`,
        `subscribers: ${complete ? "each got every line once, in order" : `PROBLEMS: ${delivered.problems.join("; ")} (received ${delivered.received.join(",")})`}`,
      ],
      load: { before, after: load1() },
      at: new Date().toISOString(),
    };
  } finally {
    await env.dispose();
  }
}
