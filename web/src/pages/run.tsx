/** One run: argv, state and times, usage, result, outputs and its live log. */
import { useState } from "react";
import { useQuery } from "urql";
import { RunQuery, RunUpdatedSubscription } from "../api/operations";
import { useStream } from "../api/use-stream";
import { LogView } from "../components/log-view";
import { StateBadge } from "../components/state-badge";
import { Status } from "../components/status";
import { Time } from "../components/time";
import type { RunFieldsFragment } from "../gql/graphql";
import { formatBytes, formatMs } from "../lib/format";
import { routeHref } from "../lib/route";

const TIMES: [keyof RunFieldsFragment, string][] = [
  ["createdAt", "Created"],
  ["queuedAt", "Queued"],
  ["dispatchedAt", "Dispatched"],
  ["acceptedAt", "Accepted"],
  ["startedAt", "Started"],
  ["finishedAt", "Finished"],
];

function RunDetails({ run }: { run: RunFieldsFragment }) {
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
        <h2 id="times-title">Times</h2>
        <dl className="pairs">
          {TIMES.map(([field, label]) => (
            <div key={field}>
              <dt>{label}</dt>
              <dd>
                <Time value={run[field] as string | null | undefined} />
              </dd>
            </div>
          ))}
        </dl>
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
        <h2>Outputs</h2>
        {run.outputs.length === 0 ? (
          <p className="muted">none</p>
        ) : (
          <ul className="outputs" data-testid="outputs">
            {run.outputs.map((o) => (
              <li key={o.id}>
                <code>{o.path}</code> {formatBytes(o.sizeBytes)} <StateBadge state={o.state} />
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

export function RunPage({ id }: { id: string }) {
  const [query] = useQuery({ query: RunQuery, variables: { id } });
  const [latest, setLatest] = useState<RunFieldsFragment | null>(null);
  const streamError = useStream(RunUpdatedSubscription, () => ({ runId: id }), (data) => setLatest(data.runUpdated), [id]);
  const run = latest ?? query.data?.run ?? null;
  return (
    <section aria-labelledby="run-title">
      {run && (
        <p className="crumbs">
          <a href="#/workflows">Workflows</a> / <a href={routeHref({ page: "workflow", id: run.task.workflow.id, taskId: run.task.id })}>{run.task.workflow.name || run.task.workflow.id}</a> /
        </p>
      )}
      <h1 id="run-title">
        {run ? (
          <>
            <code>{run.task.key}</code> on {run.node.id}, attempt {run.attempt} <StateBadge state={run.state} />
          </>
        ) : (
          "Run"
        )}
      </h1>
      <Status fetching={query.fetching} error={query.error} liveError={streamError} what="the run" />
      {run && <RunDetails run={run} />}
      <LogView runId={id} />
    </section>
  );
}
