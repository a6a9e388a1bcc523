/** One run: argv, state and times, usage, result, outputs and its live log. */
import { useState } from "react";
import { useMutation, useQuery } from "urql";
import { CancelTaskMutation } from "../api/actions";
import { RunOutputsUpdatedSubscription, RunQuery, RunTaskQuery, RunUpdatedSubscription } from "../api/operations";
import { useStream } from "../api/use-stream";
import { useViewer } from "../api/viewer";
import { ActionButton } from "../components/action-button";
import { LogView } from "../components/log-view";
import { RunOutputs } from "../components/run-outputs";
import { StateBadge } from "../components/state-badge";
import { Status } from "../components/status";
import { Time } from "../components/time";
import type { ArtifactFieldsFragment, RunFieldsFragment, RunTaskQuery as RunTaskData } from "../gql/graphql";
import { formatBytes, formatMs } from "../lib/format";
import { canChangeWork } from "../lib/permissions";
import { routeHref } from "../lib/route";
import { isTerminal } from "../lib/states";

const TIMES: [keyof RunFieldsFragment, string][] = [
  ["createdAt", "Created"],
  ["queuedAt", "Queued"],
  ["dispatchedAt", "Dispatched"],
  ["acceptedAt", "Accepted"],
  ["startedAt", "Started"],
  ["finishedAt", "Finished"],
];

/** Each step the run reached, with its time and how long after the previous step it came. */
function Timeline({ run }: { run: RunFieldsFragment }) {
  const reached = TIMES.flatMap(([field, label]) => {
    const value = run[field] as string | null | undefined;
    return value ? [{ field, label, value, at: new Date(value).getTime() }] : [];
  });
  const steps = reached.map((step, i) => ({ ...step, after: i === 0 ? null : step.at - reached[i - 1].at }));
  return (
    <ol className="timeline" data-testid="timeline">
      {steps.map((step) => (
        <li key={step.field} data-step={step.field}>
          <span className="step">{step.label}</span> <Time value={step.value} />
          {step.after !== null && <span className="muted"> (+{formatMs(step.after)})</span>}
        </li>
      ))}
      {isTerminal(run.state) && (
        <li data-step="end">
          <StateBadge state={run.state} />
          {run.failureReason && <span> {run.failureReason}</span>}
        </li>
      )}
    </ol>
  );
}

type RunTask = RunTaskData["run"]["task"];

function CancelRun({ run, task }: { run: RunFieldsFragment; task: RunTask }) {
  const viewer = useViewer();
  const [, cancel] = useMutation(CancelTaskMutation);
  if (isTerminal(run.state) || !canChangeWork(viewer, task.workflow.projectId)) return null;
  return (
    <ActionButton label="Cancel task" testId="cancel-run" confirm={`Cancel task ${task.key} (this run and its runs on other nodes)?`} run={() => cancel({ id: task.id })} />
  );
}

function RunDetails({ run, outputs }: { run: RunFieldsFragment; outputs: readonly ArtifactFieldsFragment[] }) {
  const usage = run.usage;
  return (
    <div className="run-details">
      <section className="panel" aria-labelledby="argv-title">
        <h2 id="argv-title">Command</h2>
        <ol className="argv" data-testid="argv">
          {run.argv.map((arg, i) => (
            <li key={i}>
              <code>{arg}</code>
            </li>
          ))}
        </ol>
        {run.message && <p data-testid="run-message">{run.message}</p>}
      </section>
      <section className="panel" aria-labelledby="times-title">
        <h2 id="times-title">Timeline</h2>
        <Timeline run={run} />
      </section>
      <section className="panel" aria-labelledby="usage-title">
        <h2 id="usage-title">Usage</h2>
        <dl className="pairs">
          <div><dt>Wall</dt><dd>{formatMs(usage.wallMs)}</dd></div>
          <div><dt>CPU user</dt><dd>{formatMs(usage.cpuUserMs)}</dd></div>
          <div><dt>CPU system</dt><dd>{formatMs(usage.cpuSystemMs)}</dd></div>
          <div><dt>Peak memory</dt><dd>{formatBytes(usage.peakRssBytes)}</dd></div>
          <div><dt>Log</dt><dd>{formatBytes(usage.logBytes)}</dd></div>
          <div><dt>Outputs</dt><dd>{formatBytes(usage.outputBytes)}</dd></div>
          <div><dt>Exit code</dt><dd>{run.exitCode ?? "—"}</dd></div>
          <div><dt>Failure</dt><dd>{run.failureReason ?? "—"}</dd></div>
        </dl>
      </section>
      <section className="panel" aria-labelledby="result-title">
        <h2 id="result-title">Result</h2>
        {run.result === null || run.result === undefined ? <p className="muted">none</p> : <pre data-testid="result">{JSON.stringify(run.result, null, 2)}</pre>}
      </section>
      <section className="panel wide" aria-labelledby="outputs-title">
        <h2 id="outputs-title">Outputs</h2>
        <RunOutputs outputs={outputs} nodeId={run.node.id} />
      </section>
    </div>
  );
}

export function RunPage({ id }: { id: string }) {
  const [query] = useQuery({ query: RunQuery, variables: { id } });
  const [taskQuery] = useQuery({ query: RunTaskQuery, variables: { id } });
  const [latest, setLatest] = useState<RunFieldsFragment | null>(null);
  // Outputs change without the run changing (a decision, a transfer): whichever stream spoke last is current.
  const [latestOutputs, setLatestOutputs] = useState<readonly ArtifactFieldsFragment[] | null>(null);
  const runStreamError = useStream(
    RunUpdatedSubscription,
    () => ({ runId: id }),
    (data) => {
      setLatest(data.runUpdated);
      setLatestOutputs(data.runUpdated.outputs);
    },
    [id],
  );
  const outputsStreamError = useStream(RunOutputsUpdatedSubscription, () => ({ runId: id }), (data) => setLatestOutputs(data.runOutputsUpdated), [id]);
  const streamError = runStreamError ?? outputsStreamError;
  const run = latest ?? query.data?.run ?? null;
  const outputs = latestOutputs ?? run?.outputs ?? [];
  const task = taskQuery.data?.run.task ?? null;
  return (
    <section aria-labelledby="run-title">
      {task && (
        <p className="crumbs">
          <a href="#/workflows">Workflows</a> / <a href={routeHref({ page: "workflow", id: task.workflow.id, taskId: task.id })}>{task.workflow.name || task.workflow.id}</a> /
        </p>
      )}
      <h1 id="run-title">
        {run ? (
          <>
            {task ? <code>{task.key}</code> : "Run"} on {run.node.id}, attempt {run.attempt} <StateBadge state={run.state} />
          </>
        ) : (
          "Run"
        )}
      </h1>
      <Status fetching={query.fetching} error={query.error} liveError={streamError} what="the run" />
      {run && task && (
        <p className="actions">
          <CancelRun run={run} task={task} />
        </p>
      )}
      {run && <RunDetails run={run} outputs={outputs} />}
      <LogView runId={id} />
    </section>
  );
}
