/** One workflow: its live graph; a selected task's runs, per node and attempt, link to their run pages. */
import { useCallback, useMemo } from "react";
import { useMutation, useQuery } from "urql";
import { CancelTaskMutation, CancelWorkflowMutation, RetryTaskMutation } from "../api/actions";
import { WorkflowQuery } from "../api/operations";
import { useViewer } from "../api/viewer";
import { ActionButton } from "../components/action-button";
import { StateBadge } from "../components/state-badge";
import { Status, TableHead } from "../components/status";
import { TaskGraph } from "../components/task-graph";
import { Time } from "../components/time";
import { canChangeWork } from "../lib/permissions";
import { routeHref } from "../lib/route";
import { isTerminal } from "../lib/states";
import { useLiveWorkflow } from "../lib/use-live-workflow";
import { workflowProgress, type TaskView } from "../lib/workflow-model";
import { toWorkflowView } from "../lib/workflow-view";

/** Cancel (while it has runs to stop) or retry (once finished) a task, for a RESEARCHER of the project. */
function TaskActions({ task, projectId }: { task: TaskView; projectId: string | null | undefined }) {
  const viewer = useViewer();
  const [, cancel] = useMutation(CancelTaskMutation);
  const [, retry] = useMutation(RetryTaskMutation);
  if (!canChangeWork(viewer, projectId)) return null;
  return (
    <span className="actions">
      {isTerminal(task.state) ? (
        <ActionButton label="Retry task" testId="retry-task" run={() => retry({ id: task.id })} />
      ) : (
        <ActionButton label="Cancel task" testId="cancel-task" run={() => cancel({ id: task.id })} />
      )}
    </span>
  );
}

function TaskRuns({ task, projectId }: { task: TaskView; projectId: string | null | undefined }) {
  const runs = [...task.runs].sort((a, b) => a.nodeId.localeCompare(b.nodeId) || a.attempt - b.attempt);
  return (
    <section className="panel" aria-labelledby="task-runs-title" data-testid="task-runs">
      <h2 id="task-runs-title">
        Runs of <code>{task.key}</code> <StateBadge state={task.state} />
      </h2>
      <TaskActions task={task} projectId={projectId} />
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
  const viewer = useViewer();
  const [, cancelWorkflow] = useMutation(CancelWorkflowMutation);
  const mayCancel = workflow !== null && !isTerminal(workflow.state) && canChangeWork(viewer, workflow.projectId);
  return (
    <section aria-labelledby="workflow-title">
      <p className="crumbs">
        <a href="#/workflows">Workflows</a> /
      </p>
      <h1 id="workflow-title">
        {workflow?.name || id} {workflow && <StateBadge state={workflow.state} />}
      </h1>
      <Status fetching={query.fetching} error={query.error} liveError={error} what="the workflow" />
      {mayCancel && (
        <p className="actions">
          <ActionButton label="Cancel workflow" testId="cancel-workflow" confirm="Cancel every run of this workflow that has not finished?" run={() => cancelWorkflow({ id })} />
        </p>
      )}
      {workflow && progress && (
        <>
          <p className="muted">
            Submitted <Time value={workflow.submittedAt} /> by {workflow.submittedBy ?? "—"} · {progress.done}/{progress.total} runs done · select a task to see
            its runs
          </p>
          <TaskGraph tasks={workflow.tasks} selected={taskId} onSelect={(task) => (window.location.hash = routeHref({ page: "workflow", id, taskId: task }))} />
          {selected && <TaskRuns task={selected} projectId={workflow.projectId} />}
        </>
      )}
    </section>
  );
}
