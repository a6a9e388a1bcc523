/**
 * The federated mean from TypeScript: submits the workflow over HTTP, prints every run's log lines
 * live from graphql-ws with its node in front, then each node's result and the federated mean.
 * Needs the packages graphql-ws and ws; Node 20's fetch does the rest.
 *
 *   npm run build && FEM_URL=… FEM_TOKEN=… FEM_PROJECT=… node dist/examples/typescript/federated-mean.js
 */
import { createClient } from "graphql-ws";
import WebSocket from "ws";

interface Run { id: string; state: string; logLineCount: number; result: { count: number; mean: number } | null; node: { id: string } }
interface Workflow { id: string; state: string; tasks: { id: string; key: string; runs: Run[] }[] }

const url = process.env.FEM_URL ?? "http://127.0.0.1:4000/graphql";
const auth: Record<string, string> = process.env.FEM_TOKEN ? { authorization: `Bearer ${process.env.FEM_TOKEN}` } : {};
const GRAPH = `id state tasks { id key runs { id state logLineCount result node { id } } }`;
const SITES: Record<string, string> = { "hospital-a": "4.1,5.3,6.2,5.8,4.9", "hospital-b": "7.0,6.4,7.7" };

async function graphql<T>(query: string, variables: Record<string, unknown>): Promise<T> {
  // content-type application/json: the server refuses others as possible cross-site request forgery.
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...auth }, body: JSON.stringify({ query, variables }) });
  const { data, errors } = (await response.json()) as { data: T; errors?: { message: string; extensions?: { code?: string } }[] };
  if (errors?.length) throw new Error(`${errors[0]!.extensions?.code}: ${errors[0]!.message}`);
  return data;
}

const { submitWorkflow: submitted } = await graphql<{ submitWorkflow: Workflow }>(`mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { ${GRAPH} } }`, {
  input: {
    project: process.env.FEM_PROJECT ?? "oncology",
    name: "federated mean (TypeScript)",
    tasks: [
      { key: "stats", tool: "local-stats@1.0.0", nodes: Object.keys(SITES), nodeParams: Object.entries(SITES).map(([node, values]) => ({ node, params: { site: node, values } })) },
      { key: "mean", tool: "fedavg-aggregate@1.0.0", nodes: ["hospital-a"], dependsOn: ["stats"] },
    ],
  },
});
console.log(`workflow ${submitted.id} submitted`);

// taskLogs replays a task's stored lines, then streams live ones; seqs make each line print once.
const client = createClient({ url: url.replace(/^http/, "ws"), webSocketImpl: WebSocket, connectionParams: auth, retryAttempts: 0 });
const nodeOf = new Map(submitted.tasks.flatMap((t) => t.runs.map((r) => [r.id, r.node.id] as const)));
const lastSeq = new Map<string, number>();
const failed = (err: unknown) => {
  console.error("subscription failed:", err);
  process.exit(1);
};
for (const task of submitted.tasks) {
  client.subscribe<{ taskLogs: { runId: string; lines: { seq: number; stream: string; text: string }[] } }>(
    { query: `subscription($taskId: ID!) { taskLogs(taskId: $taskId) { runId lines { seq stream text } } }`, variables: { taskId: task.id } },
    {
      next: ({ data, errors }) => {
        if (errors || !data) return failed(errors);
        const { runId, lines } = data.taskLogs;
        for (const line of lines.filter((l) => l.seq > (lastSeq.get(runId) ?? 0))) {
          lastSeq.set(runId, line.seq);
          console.log(`${(nodeOf.get(runId) ?? "?").padEnd(11)} ${line.stream.padEnd(6)} ${line.text}`);
        }
      },
      error: failed,
      complete: () => undefined,
    },
  );
}

// Until the workflow has ended and every line of every run is printed (lines are stored before a run's final state).
let workflow: Workflow;
for (;;) {
  await new Promise((resolve) => setTimeout(resolve, 500));
  workflow = (await graphql<{ workflow: Workflow }>(`query($id: ID!) { workflow(id: $id) { ${GRAPH} } }`, { id: submitted.id })).workflow;
  const runs = workflow.tasks.flatMap((t) => t.runs);
  for (const run of runs) nodeOf.set(run.id, run.node.id);
  if (["SUCCEEDED", "FAILED", "CANCELLED"].includes(workflow.state) && runs.every((r) => (lastSeq.get(r.id) ?? 0) >= r.logLineCount)) break;
}
await client.dispose();

console.log(`workflow ${workflow.state}`);
if (workflow.state !== "SUCCEEDED") process.exit(1);
const stats = workflow.tasks.find((t) => t.key === "stats")!.runs.sort((a, b) => a.node.id.localeCompare(b.node.id));
for (const run of stats) console.log(`${run.node.id}: mean ${run.result!.mean.toFixed(4)} over ${run.result!.count} values`);
const federated = workflow.tasks.find((t) => t.key === "mean")!.runs[0]!.result!;
console.log(`federated mean: ${federated.mean.toFixed(4)} over ${federated.count} values`);
