/** One workflow: its live graph; a selected task's runs, per node and attempt, link to their run pages. */
import { useCallback, useMemo } from "react";
import { useQuery } from "urql";
import { WorkflowQuery } from "../api/operations";
import { StateBadge } from "../components/state-badge";
import { Status, TableHead } from "../components/status";
import { TaskGraph } from "../components/task-graph";
import { Time } from "../components/time";
import { routeHref } from "../lib/route";
import { useLiveWorkflow } from "../lib/use-live-workflow";
import { workflowProgress, type TaskView } from "../lib/workflow-model";
import { toWorkflowView } from "../lib/workflow-view";

function TaskRuns({ task }: { task: TaskView }) {
  const runs = [...task.runs].sort((a, b) => a.nodeId.localeCompare(b.nodeId) || a.attempt - b.attempt);
  return (
    <section className="panel" aria-labelledby="task-runs-title" data-testid="task-runs">
      <h2 id="task-runs-title">
        Runs of <code>{task.key}</code> <StateBadge state={task.state} />
      </h2>
      {runs.length === 0 ? (
        <p>No runs yet.</p>
      ) : (
        <table className="grid">
          <TableHead columns={["Node", "Attempt", "State", "Run"]} />
          <tbody>
            {runs.map((run) => (
              <tr key={run.id} data-run={run.id}>
                <th scope="row">{run.nodeId}</th>
                <td>{run.attempt}</td>
                <td>
                  <StateBadge state={run.state} />
                </td>
                <td>
                  <a href={routeHref({ page: "run", id: run.id })}>open run</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function WorkflowPage({ id, taskId }: { id: string; taskId: string | null }) {
  const [query, reexecute] = useQuery({ query: WorkflowQuery, variables: { id } });
  const snapshot = useMemo(() => (query.data ? toWorkflowView(query.data.workflow) : null), [query.data]);
  const refetch = useCallback(() => reexecute({ requestPolicy: "network-only" }), [reexecute]);
  const { workflow, error } = useLiveWorkflow(id, snapshot, refetch);
  const selected = workflow?.tasks.find((t) => t.id === taskId) ?? null;
  const progress = workflow ? workflowProgress(workflow) : null;
  return (
    <section aria-labelledby="workflow-title">
      <p className="crumbs">
        <a href="#/workflows">Workflows</a> /
      </p>
      <h1 id="workflow-title">
        {workflow?.name || id} {workflow && <StateBadge state={workflow.state} />}
      </h1>
      <Status fetching={query.fetching} error={query.error} liveError={error} what="the workflow" />
      {workflow && progress && (
        <>
          <p className="muted">
            Submitted <Time value={workflow.submittedAt} /> by {workflow.submittedBy ?? "—"} · {progress.done}/{progress.total} runs done · select a task to see
            its runs
          </p>
          <TaskGraph tasks={workflow.tasks} selected={taskId} onSelect={(task) => (window.location.hash = routeHref({ page: "workflow", id, taskId: task }))} />
          {selected && <TaskRuns task={selected} />}
        </>
      )}
    </section>
  );
}
