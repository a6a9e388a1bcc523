import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { LogLineWire } from "../../src/messaging/contracts.js";
import type { AgentProcess } from "../support/agent.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { addToTestProject, gqlOk } from "../support/graphql.js";
import { getWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { processesWith } from "../support/processes.js";
import { sleep, waitUntil } from "../support/wait.js";

const test = suite("no log line lost when the agent is killed with -9");
let env: TestEnv;

// Prints "n 1", "n 2", … in bursts of 200 lines every 2 ms (tens of thousands a second) until killed.
const FLOOD = `let i = 0; const burst = () => { let out = ''; for (let k = 0; k < 200; k++) out += 'n ' + (++i) + '\\n'; process.stdout.write(out, () => setTimeout(burst, 2)); }; burst();`;

const SANDBOX_AGENT = { env: { FEM_LAUNCHERS: "process,sandbox" } };
const hasBwrap = existsSync("/usr/bin/bwrap") && process.execPath.startsWith("/usr/");

test.before(async () => {
  env = await createTestEnv({ heartbeatIntervalMs: 300, missedHeartbeats: 3 });
  await env.registerNodes(["site-a"]);
  await gqlOk(env.orchestrator.url, `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id } } }`, {
    input: { id: "site-box", capacity: 2, launchers: ["process", "sandbox"] },
  });
  await addToTestProject(env.orchestrator.url, ["site-box"]);
  await registerNodeScriptTool(env.orchestrator.url, "flood", FLOOD);
  await registerNodeScriptTool(env.orchestrator.url, "flood-boxed", FLOOD, { launcher: "sandbox" });
  await registerNodeScriptTool(env.orchestrator.url, "short", `for (let i = 1; i <= 3000; i++) console.log('s ' + i);`);
});

test.after(async () => env?.dispose());

const spoolRoot = (nodeId: string) => join(env.sandboxRoot, nodeId, "spool");
const spoolEntries = (nodeId = "site-a") => readdir(spoolRoot(nodeId)).catch(() => [] as string[]);

/** Every line the spool of a run holds, as the agent wrote it. */
async function spooledLines(nodeId: string, runId: string): Promise<LogLineWire[]> {
  const dir = join(spoolRoot(nodeId), `${runId}-1`);
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

/**
 * Freezes the agent (SIGSTOP) until what it had published is stored; if its spool then holds lines
 * the orchestrator does not have, kills it with -9, else lets it run a little and tries again. So
 * the kill always catches lines that were read but not confirmed, whatever the timing.
 */
async function killWithLinesInFlight(agent: AgentProcess, nodeId: string, runId: string): Promise<{ all: LogLineWire[]; storedBeforeRestart: number }> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    process.kill(agent.child.pid!, "SIGSTOP");
    let stored = await storedCount(runId);
    await waitUntil(
      async () => {
        await sleep(300);
        const now = await storedCount(runId);
        const settled = now === stored;
        stored = now;
        return settled;
      },
      10_000,
      "what the frozen agent published to be stored",
    );
    const all = await spooledLines(nodeId, runId);
    if (all.length > stored) {
      await agent.kill9();
      return { all, storedBeforeRestart: stored };
    }
    process.kill(agent.child.pid!, "SIGCONT");
    await sleep(37);
  }
  throw new Error("the agent never held unconfirmed lines");
}

/**
 * Starts a run that floods numbered lines, kills its agent with -9 once thousands are stored,
 * restarts the agent and checks that the stored log is exactly the numbered lines 1..N, N at least
 * the last line the spool held at the kill.
 */
async function killMidFlood(nodeId: string, tool: string, agentOptions: Parameters<TestEnv["startAgent"]>[1] = {}): Promise<void> {
  const agent = await env.startAgent(nodeId, agentOptions);
  const marker = `fem-flood-${randomBytes(3).toString("hex")}`;
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: [nodeId], params: { value: marker } }] } });
  const runId: string = data.submitWorkflow.tasks[0].runs[0].id;
  await waitUntil(async () => (await storedCount(runId)) >= 5_000, 30_000, "thousands of lines stored");
  const { all, storedBeforeRestart } = await killWithLinesInFlight(agent, nodeId, runId);
  const lastSpooled = Number(all.filter((l) => l.stream === "STDOUT").at(-1)!.text.slice(2));
  console.log(`    (${tool}: killed after line ${lastSpooled} was spooled; ${storedBeforeRestart} lines stored before the restart)`);
  // Nothing reads the run's output any more: it dies at its next write (sandbox: with the agent).
  await waitUntil(async () => (await processesWith(marker)).length === 0, 10_000, "the run's process to die without its agent");

  await env.startAgent(nodeId, agentOptions);
  const done = await waitUntil(
    async () => {
      const w = await getWorkflow(env.orchestrator.url, data.submitWorkflow.id);
      return w.state === "FAILED" ? w : undefined;
    },
    30_000,
    "the run to end NODE_LOST",
  );
  assert.is(done.tasks[0].runs[0].failureReason, "NODE_LOST");
  await waitUntil(async () => !(await spoolEntries(nodeId)).includes(`${runId}-1`), 20_000, "the replayed spool to be confirmed and removed");

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
  await env.agents.at(-1)!.stop();
}

test("kill -9 mid-flood, then a restart: every line the agent had spooled is stored, in order, once (process launcher)", async () => {
  await killMidFlood("site-a", "flood@1.0.0");
});

test("the same with the sandbox launcher, whose run dies with the agent", async () => {
  if (!hasBwrap) return console.log("  skipped: bubblewrap or a Node.js under /usr is missing");
  await killMidFlood("site-box", "flood-boxed@1.0.0", SANDBOX_AGENT);
});

test.run();
