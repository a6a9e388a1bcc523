/** Every node the caller may see, kept current by `nodeUpdated` (heartbeats, connectivity, admin state). */
import { useEffect, useMemo, useState } from "react";
import { useMutation, useQuery, useSubscription } from "urql";
import { SetNodeAdminStateMutation } from "../api/actions";
import { NodesQuery, NodeUpdatedSubscription } from "../api/operations";
import { useViewer } from "../api/viewer";
import { ActionButton } from "../components/action-button";
import { StateBadge } from "../components/state-badge";
import { Status, TableHead } from "../components/status";
import { Time } from "../components/time";
import type { NodeFieldsFragment } from "../gql/graphql";
import { formatAgo, formatBytes } from "../lib/format";
import { adminStateActions, operatesNode } from "../lib/permissions";

/** Re-renders every second so "12 s ago" stays true; nothing is fetched. */
function useNow(intervalMs = 1_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

function Health({ node }: { node: NodeFieldsFragment }) {
  const health = node.health;
  if (!health) return <>no report yet</>;
  const usedMemory = health.memoryTotalBytes - health.memoryFreeBytes;
  return (
    <span className="health">
      {health.cpus} CPU · load {health.loadAvg1.toFixed(2)} · memory {formatBytes(usedMemory)} of {formatBytes(health.memoryTotalBytes)} · disk free{" "}
      {formatBytes(health.diskFreeBytes)} · agent {health.agentVersion}
    </span>
  );
}

/** Drain / disable / enable for an operator of the node (or ADMIN); nothing for anyone else. */
function AdminStateActions({ node }: { node: NodeFieldsFragment }) {
  const viewer = useViewer();
  const [, setState] = useMutation(SetNodeAdminStateMutation);
  if (!operatesNode(viewer, node.id)) return null;
  return (
    <span className="actions" data-testid="admin-actions">
      {adminStateActions(node.adminState).map(({ state, label }) => (
        <ActionButton key={state} label={label} testId={`set-${state.toLowerCase()}`} run={() => setState({ id: node.id, state })} />
      ))}
    </span>
  );
}

export function NodesPage() {
  const [query] = useQuery({ query: NodesQuery });
  // Subscribed alongside the query; the newest version of each node wins (heartbeats carry the whole node).
  const [updates] = useSubscription({ query: NodeUpdatedSubscription }, (held: Record<string, NodeFieldsFragment> = {}, event) => ({
    ...held,
    [event.nodeUpdated.id]: event.nodeUpdated,
  }));
  const now = useNow();
  const nodes = useMemo(() => {
    const byId = new Map((query.data?.nodes.nodes ?? []).map((n) => [n.id, n]));
    for (const node of Object.values(updates.data ?? {})) byId.set(node.id, node);
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }, [query.data, updates.data]);

  return (
    <section aria-labelledby="nodes-title">
      <h1 id="nodes-title">Nodes</h1>
      <Status fetching={query.fetching} error={query.error} liveError={updates.error?.message} what="nodes" />
      {query.data && nodes.length === 0 && <p>No nodes are registered (or none you may see).</p>}
      {nodes.length > 0 && (
        <table className="grid" data-testid="nodes">
          <TableHead columns={["Node", "Connectivity", "Last heartbeat", "Health", "Running / capacity", "Admin state"]} />
          <tbody>
            {nodes.map((node) => (
              <tr key={node.id} data-node={node.id}>
                <th scope="row">
                  {node.id}
                  {node.name && node.name !== node.id && <span className="muted"> {node.name}</span>}
                </th>
                <td>
                  <span className={`connectivity ${node.connectivity.toLowerCase()}`} data-testid="connectivity">
                    {node.connectivity}
                  </span>
                </td>
                <td>
                  <span data-testid="heartbeat">{formatAgo(node.lastHeartbeatAt, now)}</span> <span className="muted">(<Time value={node.lastHeartbeatAt} />)</span>
                </td>
                <td>
                  <Health node={node} />
                </td>
                <td data-testid="running">
                  {node.activeRuns} / {node.capacity}
                </td>
                <td data-testid="admin-state">
                  <StateBadge state={node.adminState} /> <AdminStateActions node={node} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
