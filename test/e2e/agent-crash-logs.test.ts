import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { LogLineWire } from "../../src/messaging/contracts.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gqlOk } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("no log line lost when the agent is killed with -9");
let env: TestEnv;

// Prints "n 1", "n 2", … in bursts of 200 lines every 2 ms (tens of thousands a second) until killed.
const FLOOD = `let i = 0; const burst = () => { let out = ''; for (let k = 0; k < 200; k++) out += 'n ' + (++i) + '\\n'; process.stdout.write(out, () => setTimeout(burst, 2)); }; burst();`;

test.before(async () => {
  env = await createTestEnv({ heartbeatIntervalMs: 300, missedHeartbeats: 3 });
  await env.registerNodes(["site-a"]);
  await registerNodeScriptTool(env.orchestrator.url, "flood", FLOOD);
  await registerNodeScriptTool(env.orchestrator.url, "short", `for (let i = 1; i <= 3000; i++) console.log('s ' + i);`);
});

test.after(async () => env?.dispose());

const spoolRoot = () => join(env.sandboxRoot, "site-a", "spool");
const spoolEntries = () => readdir(spoolRoot()).catch(() => [] as string[]);

/** Every line the spool of a run holds, as the agent wrote it. */
async function spooledLines(runId: string): Promise<LogLineWire[]> {
  const dir = join(spoolRoot(), `${runId}-1`);
  const files = (await readdir(dir)).sort();
  const text = (await Promise.all(files.map((f) => readFile(join(dir, f), "utf8")))).join("");
  return text
    .split("\n")
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLineWire];
      } catch {
        return []; // a torn last line
      }
    });
}

const storedCount = async (runId: string) => Number((await env.sql<{ n: string }>(`select count(*) n from log_line where run_id = ?`, [runId]))[0]!.n);

test("a run that ends leaves no spool behind once its lines are confirmed", async () => {
  await env.startAgent("site-a");
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "short@1.0.0", nodes: ["site-a"] }] } });
  await waitUntil(async () => (await getWorkflow(env.orchestrator.url, data.submitWorkflow.id)).state === "SUCCEEDED", 30_000, "the run to succeed");
  const runId: string = data.submitWorkflow.tasks[0].runs[0].id;
  assert.ok((await storedCount(runId)) >= 3_000);
  await waitUntil(async () => !(await spoolEntries()).includes(`${runId}-1`), 10_000, "the run's spool to be removed");
  await env.agents.at(-1)!.stop();
});

test("kill -9 mid-flood, then a restart: every line the agent had spooled is stored, in order, once", async () => {
  const agent = await env.startAgent("site-a");
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool: "flood@1.0.0", nodes: ["site-a"] }] } });
  const runId: string = data.submitWorkflow.tasks[0].runs[0].id;
  await waitUntil(async () => (await storedCount(runId)) >= 5_000, 30_000, "thousands of lines stored");
  await agent.kill9();

  const all = await spooledLines(runId);
  const spooled = all.filter((l) => l.stream === "STDOUT");
  const lastSpooled = Number(spooled.at(-1)!.text.slice(2));
  // What the orchestrator had when the agent died (plus what was already on its way): less than the spool.
  await sleep(1_000);
  const storedBeforeRestart = await storedCount(runId);
  console.log(`    (killed after line ${lastSpooled} was spooled; ${storedBeforeRestart} lines stored before the restart)`);
  assert.ok(storedBeforeRestart < all.length, "the kill caught lines the broker had not confirmed");

  await env.startAgent("site-a");
  const done = await waitUntil(
    async () => {
      const w = await getWorkflow(env.orchestrator.url, data.submitWorkflow.id);
      return w.state === "FAILED" ? w : undefined;
    },
    30_000,
    "the run to end NODE_LOST",
  );
  assert.is(done.tasks[0].runs[0].failureReason, "NODE_LOST");
  await waitUntil(async () => !(await spoolEntries()).includes(`${runId}-1`), 20_000, "the replayed spool to be confirmed and removed");

  const rows = await env.sql<{ seq: number; stream: string; text: string }>(`select seq, stream, text from log_line where run_id = ? order by seq`, [runId]);
  assert.equal(
    rows.map((r) => r.seq),
    rows.map((_, i) => i + 1),
    "seq is 1..M with no gap",
  );
  const out = rows.filter((r) => r.stream === "STDOUT").map((r) => r.text);
  const n = out.length;
  assert.ok(
    out.every((text, i) => text === `n ${i + 1}`),
    "the printed lines are exactly n 1..n N, in order, each once",
  );
  assert.ok(n >= lastSpooled, `N = ${n} is at least the last spooled line ${lastSpooled}`);
  assert.match(rows.at(-1)!.text, /agent restarted while the run was active/);
  console.log(`    (${n} printed lines stored after the restart, ${n - storedBeforeRestart} or more of them from the spool)`);
});

test.run();
