/** The audit log (ADMIN), newest first, filtered by actor, action, target, outcome or request id. */
import { useState, type FormEvent } from "react";
import { useQuery } from "urql";
import { AuditEventsQuery } from "../../api/admin-operations";
import { PagerButtons, usePager } from "../../components/pager";
import { Status, TableHead } from "../../components/status";
import { Time } from "../../components/time";
import type { AuditEventFilter, AuditOutcome } from "../../gql-admin/graphql";

const PAGE_SIZE = 50;
const OUTCOMES: AuditOutcome[] = ["OK", "FAILED", "DENIED", "UNAUTHENTICATED"];
const FIELDS = [
  ["actor", "Actor"],
  ["action", "Action"],
  ["target", "Target"],
  ["requestId", "Request id"],
] as const;

type Draft = Record<(typeof FIELDS)[number][0], string> & { outcome: "" | AuditOutcome };
const EMPTY: Draft = { actor: "", action: "", target: "", requestId: "", outcome: "" };

function toFilter(draft: Draft): AuditEventFilter {
  const filter: AuditEventFilter = {};
  for (const [key] of FIELDS) if (draft[key].trim()) filter[key] = draft[key].trim();
  if (draft.outcome) filter.outcome = draft.outcome;
  return filter;
}

export function AuditPage() {
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [filter, setFilter] = useState<AuditEventFilter>({});
  const pager = usePager();
  const [events, refetch] = useQuery({ query: AuditEventsQuery, variables: { first: PAGE_SIZE, after: pager.after, filter } });

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilter(toFilter(draft));
    pager.reset();
  };
  const list = events.data?.auditEvents.nodes ?? [];
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <form className="inline-form panel" onSubmit={apply} aria-label="Filter the audit log">
        {FIELDS.map(([key, label]) => (
          <label key={key}>
            {label} <input value={draft[key]} onChange={(e) => setDraft({ ...draft, [key]: e.target.value })} data-filter={key} />
          </label>
        ))}
        <label>
          Outcome{" "}
          <select value={draft.outcome} onChange={(e) => setDraft({ ...draft, outcome: e.target.value as Draft["outcome"] })}>
            <option value="">any</option>
            {OUTCOMES.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        </label>
        <button type="submit">Filter</button>
        <button type="button" onClick={() => refetch({ requestPolicy: "network-only" })}>
          Refresh
        </button>
      </form>
      <Status fetching={events.fetching} error={events.error} what="the audit log" />
      {events.data && list.length === 0 && <p>No events match.</p>}
      {list.length > 0 && (
        <table className="grid" data-testid="audit">
          <TableHead columns={["When", "Actor", "Action", "Target", "Outcome", "Request", "Details"]} />
          <tbody>
            {list.map((e) => (
              <tr key={e.id} data-action={e.action} data-outcome={e.outcome}>
                <td>
                  <Time value={e.at} />
                </td>
                <td>{e.actor}</td>
                <th scope="row">{e.action}</th>
                <td data-testid="audit-target">{e.target ?? "—"}</td>
                <td>{e.outcome}</td>
                <td>
                  <code>{e.requestId}</code>
                </td>
                <td>
                  <code className="details">{Object.keys(e.details).length > 0 ? JSON.stringify(e.details) : ""}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {events.data && <PagerButtons pager={pager} endCursor={events.data.auditEvents.pageInfo.endCursor} hasNextPage={events.data.auditEvents.pageInfo.hasNextPage} />}
    </section>
  );
}
