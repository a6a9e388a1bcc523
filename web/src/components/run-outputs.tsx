/**
 * A run's output files: release state, size, sha256, who decided; a download once AVAILABLE; and
 * approve/reject with a comment for an operator of the run's node while one is PENDING_REVIEW.
 */
import { useState } from "react";
import { useMutation } from "urql";
import { errorMessage } from "../api/client";
import { useApi } from "../api/context";
import { DecideArtifactReleaseMutation } from "../api/actions";
import { useViewer } from "../api/viewer";
import type { ArtifactFieldsFragment } from "../gql/graphql";
import { downloadName, saveBlob } from "../lib/download";
import { formatBytes } from "../lib/format";
import { canDecideRelease } from "../lib/permissions";
import { StateBadge } from "./state-badge";
import { TableHead } from "./status";
import { Time } from "./time";

function Download({ artifact }: { artifact: ArtifactFieldsFragment }) {
  const api = useApi();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!artifact.downloadUrl) return null;
  const url = artifact.downloadUrl;
  const click = async () => {
    setBusy(true);
    setError(null);
    try {
      const response = await api.fetchAuthorized(url);
      saveBlob(await response.blob(), downloadName(artifact.path));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" onClick={click} disabled={busy} data-testid="download" aria-label={`Download ${artifact.path}`}>
        {busy ? "Downloading…" : "Download"}
      </button>
      {error && (
        <span className="error inline" role="alert">
          {error}
        </span>
      )}
    </>
  );
}

function Decide({ artifact, onDecided }: { artifact: ArtifactFieldsFragment; onDecided(a: ArtifactFieldsFragment): void }) {
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [result, decide] = useMutation(DecideArtifactReleaseMutation);
  const send = async (decision: "APPROVE" | "REJECT") => {
    setError(null);
    const answer = await decide({ id: artifact.id, decision, comment: comment.trim() || null });
    if (answer.error) setError(errorMessage(answer.error));
    else if (answer.data) onDecided(answer.data.decideArtifactRelease);
  };
  const inputId = `comment-${artifact.id}`;
  return (
    <div className="decide" data-testid="decide">
      <label htmlFor={inputId}>Comment</label>
      <input id={inputId} value={comment} onChange={(e) => setComment(e.target.value)} maxLength={2000} data-testid="decision-comment" />
      <button type="button" disabled={result.fetching} onClick={() => void send("APPROVE")} data-testid="approve">
        Approve
      </button>
      <button type="button" disabled={result.fetching} onClick={() => void send("REJECT")} data-testid="reject">
        Reject
      </button>
      {error && (
        <span className="error inline" role="alert" data-testid="action-error">
          {error}
        </span>
      )}
    </div>
  );
}

export function RunOutputs({ outputs, nodeId }: { outputs: readonly ArtifactFieldsFragment[]; nodeId: string }) {
  const viewer = useViewer();
  // A decision's answer is shown at once; a later run update (runUpdated) replaces it.
  const [decided, setDecided] = useState<Record<string, ArtifactFieldsFragment>>({});
  if (outputs.length === 0) return <p className="muted">none</p>;
  return (
    <table className="grid outputs" data-testid="outputs">
      <TableHead columns={["File", "State", "Size", "SHA-256", "Decision", ""]} />
      <tbody>
        {outputs.map((original) => {
          const artifact = decided[original.id] && original.state === "PENDING_REVIEW" ? decided[original.id] : original;
          return (
            <tr key={artifact.id} data-artifact={artifact.path}>
              <th scope="row">
                <code>{artifact.path}</code>
              </th>
              <td>
                <StateBadge state={artifact.state} />
                {artifact.reason && <div className="muted">{artifact.reason}</div>}
              </td>
              <td>{formatBytes(artifact.sizeBytes)}</td>
              <td>
                <code className="hash" title={artifact.sha256 ?? undefined}>
                  {artifact.sha256 ?? "—"}
                </code>
              </td>
              <td>
                {artifact.decidedBy ? (
                  <>
                    {artifact.decidedBy} <Time value={artifact.decidedAt} />
                    {artifact.comment && <div className="muted">“{artifact.comment}”</div>}
                  </>
                ) : (
                  <span className="muted">{artifact.releasePolicy.toLowerCase()}</span>
                )}
              </td>
              <td>
                {artifact.state === "PENDING_REVIEW" && canDecideRelease(viewer, nodeId, artifact.releasePolicy) ? (
                  <Decide artifact={artifact} onDecided={(a) => setDecided((d) => ({ ...d, [a.id]: a }))} />
                ) : (
                  <Download artifact={artifact} />
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
