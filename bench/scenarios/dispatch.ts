/**
 * Dispatch: one workflow of `tasks` tasks × `nodes` nodes (room for every run) from the mutation to
 * every run confirmed in its node's queue (passive declares count them), beside raw amqplib
 * confirmed publishing of as many 1 KB messages with a window of 500.
 */
import amqp from "amqplib";
import { nodeQueueNames } from "../../src/messaging/contracts.js";
import { createTestEnv } from "../../test/support/env.js";
import { registerShellTool } from "../../test/support/fixtures.js";
import { TEST_ADMIN_TOKEN } from "../../test/support/graphql.js";
import { waitUntil } from "../../test/support/wait.js";
import { flag, load1, rate, rawPublishBaseline, type ScenarioResult } from "../lib.js";

export async function dispatchScenario(args: string[]): Promise<ScenarioResult> {
  const taskCount = flag(args, "tasks", 1_000);
  const nodeCount = flag(args, "nodes", 10);
  const runCount = taskCount * nodeCount;
  const before = load1();
  const env = await createTestEnv({ relayPollMs: 500, schedulerPollMs: 500 });
  try {
    const nodes = Array.from({ length: nodeCount }, (_, i) => `bench-d${i}`);
    await env.registerNodes(nodes, taskCount);
    const tool = await registerShellTool(env.orchestrator.url, "noop", "true", []);
    const raw = await rawPublishBaseline(env.vhost.url, runCount);

    const connection = await amqp.connect(env.vhost.url, { noDelay: true });
    const channel = await connection.createChannel();
    channel.on("error", () => undefined);
    const queued = async () => {
      let total = 0;
      for (const node of nodes) total += await channel.checkQueue(nodeQueueNames(node).runs).then((q) => q.messageCount, () => 0);
      return total;
    };
    const tasks = Array.from({ length: taskCount }, (_, i) => ({ key: `t${i}`, tool, nodes }));
    const started = performance.now();
    // Not gqlOk: its 30 s bound is too short for a loaded machine.
    const response = await fetch(env.orchestrator.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      body: JSON.stringify({ query: `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id } }`, variables: { input: { tasks } } }),
      signal: AbortSignal.timeout(300_000),
    });
    const answer = (await response.json()) as { errors?: unknown[] };
    if (answer.errors) throw new Error(`submitWorkflow: ${JSON.stringify(answer.errors)}`);
    const answeredMs = performance.now() - started;
    await waitUntil(async () => (await queued()) >= runCount, 300_000, "every run in its node's queue", 10);
    const totalMs = performance.now() - started;
    await connection.close();
    const [sql] = await env.sql<{ waited_ms: number }>(`select max(extract(epoch from sent_at - created_at) * 1000)::float8 waited_ms from outbox`);
    const runsPerSecond = rate(runCount, totalMs);
    const ratioToRaw = runsPerSecond / raw;
    return {
      name: "dispatch",
      title: `Dispatch: ${taskCount.toLocaleString("en")} tasks × ${nodeCount} nodes → every run confirmed in its node's queue`,
      figures: [
        {
          label: "runs confirmed in queues per second",
          value: runsPerSecond,
          unit: "runs/s",
          baseline: { label: "amqplib confirmed publish, 1 KB, window 500", value: raw },
          target: "≥ 5,000 runs/s and ≥ 60 % of raw",
          met: runsPerSecond >= 5_000 && ratioToRaw >= 0.6,
        },
        { label: "mutation answered after", value: Math.round(answeredMs), unit: "ms" },
      ],
      breakdown: [
        { label: "submit (validate, insert, answer)", ms: Math.round(answeredMs) },
        { label: "after the answer: schedule, relay, confirm", ms: Math.round(totalMs - answeredMs) },
      ],
      notes: [`longest outbox wait of a row (created → confirmed): ${Math.round(Number(sql.waited_ms))} ms`],
      load: { before, after: load1() },
      at: new Date().toISOString(),
    };
  } finally {
    await env.dispose();
  }
}
