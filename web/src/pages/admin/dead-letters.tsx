/** Messages the broker dead-lettered (ADMIN), newest first, each body readable on demand. */
import { useQuery } from "urql";
import { DeadLettersQuery } from "../../api/admin-operations";
import { PagerButtons, usePager } from "../../components/pager";
import { Status, TableHead } from "../../components/status";
import { Time } from "../../components/time";

const PAGE_SIZE = 50;

export function DeadLettersPage() {
  const pager = usePager();
  const [letters, refetch] = useQuery({ query: DeadLettersQuery, variables: { first: PAGE_SIZE, after: pager.after } });
  const list = letters.data?.deadLetters.nodes ?? [];
  return (
    <section aria-labelledby="dead-letters-title">
      <h1 id="dead-letters-title">Dead letters</h1>
      <p className="muted">
        Messages the broker could not deliver or that kept failing. The API lists them for inspection; it has no requeue or discard yet, so fix the cause and resubmit the work.
      </p>
      <button type="button" onClick={() => refetch({ requestPolicy: "network-only" })}>
        Refresh
      </button>
      <Status fetching={letters.fetching} error={letters.error} what="dead letters" />
      {letters.data && list.length === 0 && <p data-testid="no-dead-letters">No dead letters.</p>}
      {list.length > 0 && (
        <table className="grid" data-testid="dead-letters">
          <TableHead columns={["Received", "Queue", "Routing key", "Reason", "Deliveries", "Body"]} />
          <tbody>
            {list.map((d) => (
              <tr key={d.id}>
                <td>
                  <Time value={d.receivedAt} />
                </td>
                <td>{d.queue ?? "—"}</td>
                <td>
                  <code>{d.routingKey}</code>
                </td>
                <td>{d.reason ?? "—"}</td>
                <td>{d.deliveryCount ?? "—"}</td>
                <td>
                  <details>
                    <summary>{d.messageId ?? `${d.body.length} characters`}</summary>
                    <pre>{d.body}</pre>
                  </details>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {letters.data && <PagerButtons pager={pager} endCursor={letters.data.deadLetters.pageInfo.endCursor} hasNextPage={letters.data.deadLetters.pageInfo.hasNextPage} />}
    </section>
  );
}
