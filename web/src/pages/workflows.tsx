/**
 * The newest workflows, filtered by state, submitter, time and project; each row kept current by its
 * own `workflowEvents`, and new ones brought in by `workflowSubmitted` (the list is asked again).
 */
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { useQuery } from "urql";
import { ProjectNamesQuery, WorkflowsQuery, WorkflowSubmittedSubscription } from "../api/operations";
import { useStream } from "../api/use-stream";
import { StateBadge } from "../components/state-badge";
import { Status, TableHead } from "../components/status";
import { Time } from "../components/time";
import type { WorkflowFieldsFragment } from "../gql/graphql";
import { routeHref } from "../lib/route";
import { RUN_STATES, type RunState } from "../lib/states";
import { useLiveWorkflow } from "../lib/use-live-workflow";
import { EMPTY_FILTER, toWorkflowFilter, type WorkflowFilterForm } from "../lib/workflow-filter";
import { workflowProgress } from "../lib/workflow-model";
import { toWorkflowView } from "../lib/workflow-view";

/** Rows shown (each holds one subscription; the server allows 100 per socket). */
const PAGE_SIZE = 25;

function WorkflowRow({ snapshot, projects }: { snapshot: WorkflowFieldsFragment; projects: ReadonlyMap<string, string> }) {
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
      <td>{snapshot.projectId ? (projects.get(snapshot.projectId) ?? snapshot.projectId) : "—"}</td>
    </tr>
  );
}

function Filters({ value, projects, onApply }: { value: WorkflowFilterForm; projects: ReadonlyMap<string, string>; onApply(form: WorkflowFilterForm): void }) {
  const [form, setForm] = useState(value);
  const set = (change: Partial<WorkflowFilterForm>) => setForm((f) => ({ ...f, ...change }));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onApply(form);
  };
  return (
    <form className="filters" onSubmit={submit} aria-label="Filter workflows" data-testid="workflow-filters">
      <label>
        State
        <select value={form.state} onChange={(e) => set({ state: e.target.value as RunState | "" })} data-testid="filter-state">
          <option value="">any</option>
          {RUN_STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        Submitted by
        <input value={form.submittedBy} onChange={(e) => set({ submittedBy: e.target.value })} data-testid="filter-submitter" />
      </label>
      <label>
        Project
        <select value={form.project} onChange={(e) => set({ project: e.target.value })} data-testid="filter-project">
          <option value="">any</option>
          {[...projects].map(([id, name]) => (
            <option key={id} value={id}>
              {name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Submitted after
        <input type="datetime-local" value={form.after} onChange={(e) => set({ after: e.target.value })} data-testid="filter-after" />
      </label>
      <label>
        Submitted before
        <input type="datetime-local" value={form.before} onChange={(e) => set({ before: e.target.value })} data-testid="filter-before" />
      </label>
      <button type="submit">Apply</button>
      <button
        type="button"
        onClick={() => {
          setForm(EMPTY_FILTER);
          onApply(EMPTY_FILTER);
        }}
      >
        Clear
      </button>
    </form>
  );
}

export function WorkflowsPage() {
  const [form, setForm] = useState<WorkflowFilterForm>(EMPTY_FILTER);
  const filter = useMemo(() => toWorkflowFilter(form), [form]);
  const [query, refetch] = useQuery({ query: WorkflowsQuery, variables: { first: PAGE_SIZE, filter } });
  // New workflows: one query per animation frame however many arrive, with the page's filters.
  const frame = useRef<number | null>(null);
  useEffect(() => () => {
    if (frame.current !== null) cancelAnimationFrame(frame.current);
  }, []);
  const liveError = useStream(
    WorkflowSubmittedSubscription,
    () => ({ project: filter.project ?? null }),
    () => {
      frame.current ??= requestAnimationFrame(() => {
        frame.current = null;
        refetch({ requestPolicy: "network-only" });
      });
    },
    [filter.project],
  );
  const [projectsQuery] = useQuery({ query: ProjectNamesQuery });
  const projects = useMemo(() => new Map((projectsQuery.data?.projects.nodes ?? []).map((p) => [p.id, p.name])), [projectsQuery.data]);
  const workflows = query.data?.workflows.nodes ?? [];
  return (
    <section aria-labelledby="workflows-title">
      <h1 id="workflows-title">Workflows</h1>
      <Filters value={form} projects={projects} onApply={setForm} />
      {/* Asked again for a new workflow: the rows stay while it loads. */}
      <Status fetching={query.fetching && !query.data} error={query.error} liveError={liveError} what="workflows" />
      {query.data && workflows.length === 0 && <p>No workflows{Object.keys(filter).length > 0 ? " match the filter" : " yet"}.</p>}
      {workflows.length > 0 && (
        <table className="grid" data-testid="workflows">
          <TableHead columns={["Workflow", "State", "Runs done", "Tasks", "Submitted", "By", "Project"]} />
          <tbody>
            {workflows.map((w) => (
              <WorkflowRow key={w.id} snapshot={w} projects={projects} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
