/**
 * Graph query: a workflow of `tasks` tasks (each on one node, each after up to three earlier ones)
 * with its runs, read whole as a dashboard does; p50 and p95 of `queries` reads and the number of
 * SQL statements one read takes (bounded, whatever the size).
 */
import { createTestEnv } from "../../test/support/env.js";
import { registerShellTool } from "../../test/support/fixtures.js";
import { gqlOk } from "../../test/support/graphql.js";
import { flag, load1, percentile, type ScenarioResult } from "../lib.js";

const GRAPH = `query($id: ID!) { workflow(id: $id) { id state tasks { id key state dependsOn { id } runs { id state attempt queuedAt startedAt finishedAt node { id } } } } }`;

export async function graphScenario(args: string[]): Promise<ScenarioResult> {
  const taskCount = flag(args, "tasks", 1_000);
  const queries = flag(args, "queries", 30);
  const before = load1();
  let statements = 0;
  const env = await createTestEnv({}, { onQuery: () => (statements += 1) });
  try {
    await env.registerNodes(["bench-q"], 2);
    const tool = await registerShellTool(env.orchestrator.url, "noop", "true", []);
    const tasks = Array.from({ length: taskCount }, (_, i) => ({
      key: `t${i}`,
      tool,
      nodes: ["bench-q"],
      dependsOn: [...new Set([i - 1, Math.floor(i / 2), Math.floor(i / 3)].filter((d) => d >= 0 && d < i))].map((d) => `t${d}`),
    }));
    const { submitWorkflow } = await gqlOk<{ submitWorkflow: { id: string } }>(env.orchestrator.url, `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id } }`, { input: { tasks } });
    await gqlOk(env.orchestrator.url, GRAPH, { id: submitWorkflow.id });
    const times: number[] = [];
    let perRead = 0;
    for (let i = 0; i < queries; i++) {
      const counted = statements;
      const started = performance.now();
      const data = await gqlOk<{ workflow: { tasks: unknown[] } }>(env.orchestrator.url, GRAPH, { id: submitWorkflow.id });
      times.push(performance.now() - started);
      perRead = statements - counted;
      if (data.workflow.tasks.length !== taskCount) throw new Error(`the graph has ${data.workflow.tasks.length} tasks, not ${taskCount}`);
    }
    const p50 = Math.round(percentile(times, 50) * 10) / 10;
    return {
      name: "graph",
      title: `Graph query: a ${taskCount.toLocaleString("en")}-task workflow with runs and dependencies, read whole (${queries} reads)`,
      figures: [
        { label: "p50", value: p50, unit: "ms", target: "≤ 100 ms", met: p50 <= 100 },
        { label: "p95", value: Math.round(percentile(times, 95) * 10) / 10, unit: "ms" },
        { label: "SQL statements per read (includes authentication)", value: perRead, unit: "statements" },
      ],
      notes: [],
      load: { before, after: load1() },
      at: new Date().toISOString(),
    };
  } finally {
    await env.dispose();
  }
}
