/** The newest workflows, each row kept current by its own `workflowEvents`. */
import { useMemo } from "react";
import { useQuery } from "urql";
import { WorkflowsQuery } from "../api/operations";
import { StateBadge } from "../components/state-badge";
import { Status, TableHead } from "../components/status";
import { Time } from "../components/time";
import type { WorkflowFieldsFragment } from "../gql/graphql";
import { routeHref } from "../lib/route";
import { useLiveWorkflow } from "../lib/use-live-workflow";
import { workflowProgress } from "../lib/workflow-model";
import { toWorkflowView } from "../lib/workflow-view";

/** Rows shown (each holds one subscription; the server allows 100 per socket). */
const PAGE_SIZE = 25;

function WorkflowRow({ snapshot }: { snapshot: WorkflowFieldsFragment }) {
  const initial = useMemo(() => toWorkflowView(snapshot), [snapshot]);
  const { workflow } = useLiveWorkflow(snapshot.id, initial);
  const shown = workflow ?? initial;
  const { done, total } = workflowProgress(shown);
  return (
    <tr data-workflow={shown.id}>
      <th scope="row">
        <a href={routeHref({ page: "workflow", id: shown.id, taskId: null })}>{shown.name || shown.id}</a>
      </th>
      <td>
        <StateBadge state={shown.state} />
      </td>
      <td>
        <progress max={Math.max(total, 1)} value={done} aria-label={`${done} of ${total} runs done`} />{" "}
        <span data-testid="progress">
          {done}/{total}
        </span>
      </td>
      <td>{shown.tasks.length}</td>
      <td>
        <Time value={shown.submittedAt} />
      </td>
      <td>{shown.submittedBy ?? "—"}</td>
    </tr>
  );
}

export function WorkflowsPage() {
  const [query] = useQuery({ query: WorkflowsQuery, variables: { first: PAGE_SIZE } });
  const workflows = query.data?.workflows.nodes ?? [];
  return (
    <section aria-labelledby="workflows-title">
      <h1 id="workflows-title">Workflows</h1>
      <Status fetching={query.fetching} error={query.error} what="workflows" />
      {query.data && workflows.length === 0 && <p>No workflows yet.</p>}
      {workflows.length > 0 && (
        <table className="grid" data-testid="workflows">
          <TableHead columns={["Workflow", "State", "Runs done", "Tasks", "Submitted", "By"]} />
          <tbody>
            {workflows.map((w) => (
              <WorkflowRow key={w.id} snapshot={w} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
