/**
 * Artifacts: recording the manifests nodes report with a run's end, and the release decisions
 * taken on them, through the API or on the node. Framework-free: throws AppErrors only. Every
 * decision is appended to the audit log in the transaction that makes it.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAuditEvent, AuditOutcome } from "../audit/index.js";
import { json, query } from "../db/sql.js";
import { BadInputError, ChangeSet, checkUuid, ConflictError, ForbiddenError, NotFoundError, operatesNode, type Viewer } from "../kernel/index.js";
import type { RunOutputsEvent, RunStateEvent } from "../messaging/contracts.js";
import { getRun, settleInputWaiters } from "../runs/index.js";
import { replaceNul } from "../shared/index.js";
import { Artifact, ArtifactDecision, ArtifactState, ReleasePolicy } from "./artifact.entity.js";
import { enqueueApprovedRelease } from "./transfer.service.js";

/** Longest comment on a decision. */
export const MAX_COMMENT_CHARS = 1_000;
/** Who decided an artifact released by the `auto` policy. */
export const AUTO_DECIDER = "policy:auto";

const clean = (text: string | null): string | null => (text === null ? null : replaceNul(text).text);

/**
 * Stores the manifests of terminal reports, one row per listed file, in one statement. A report
 * for another node or attempt, or for a run not yet ended, stores nothing; a resent report stores
 * nothing twice. A file starts FAILED when the node refused it; APPROVED under `auto` when the run
 * SUCCEEDED, ON_NODE when it did not; PENDING_REVIEW under `review` and `local`.
 */
export async function recordManifests(em: EntityManager, events: readonly RunStateEvent[], changes: ChangeSet): Promise<void> {
  const rows = events.flatMap((event) =>
    (event.outputs?.files ?? []).map((file) => ({
      run_id: event.runId,
      attempt: event.attempt,
      node_id: event.nodeId,
      policy: event.outputs!.policy.toUpperCase(),
      path: clean(file.path),
      size_bytes: file.sizeBytes,
      sha256: file.sha256,
      refused: clean(file.refused),
    })),
  );
  if (rows.length === 0) return;
  const released = `m.refused is null and m.policy = 'AUTO' and r.state = 'SUCCEEDED'`;
  const stored = await query<{ run_id: string }>(
    em,
    `insert into artifact (id, run_id, node_id, path, size_bytes, sha256, state, release_policy, reason, decided_by, decided_at, created_at)
     select gen_random_uuid(), r.id, r.node_id, m.path, m.size_bytes, m.sha256,
       case when m.refused is not null then 'FAILED' when ${released} then 'APPROVED' when m.policy = 'AUTO' then 'ON_NODE' else 'PENDING_REVIEW' end,
       m.policy, m.refused,
       case when ${released} then ? end,
       case when ${released} then now() end,
       now()
     from jsonb_to_recordset(?::jsonb) as m(run_id uuid, attempt int, node_id text, policy text, path text, size_bytes double precision, sha256 text, refused text)
     join run r on r.id = m.run_id and r.attempt = m.attempt and r.node_id = m.node_id
     where r.state in ('SUCCEEDED', 'FAILED', 'CANCELLED')
     on conflict (run_id, path) do nothing
     returning run_id`,
    [AUTO_DECIDER, json(rows)],
  );
  changes.outputsChanged(stored.map((row) => row.run_id));
}

/** Every artifact of the given runs, by path; one statement for any number of runs. */
export async function artifactsByRunIds(em: EntityManager, ids: readonly string[]): Promise<Artifact[]> {
  return em.find(Artifact, { runId: { $in: [...ids] } }, { orderBy: { runId: "asc", path: "asc" } });
}

const stateOf = (decision: ArtifactDecision | RunOutputsEvent["decisions"][number]["decision"]) =>
  decision === "APPROVE" ? ArtifactState.APPROVED : ArtifactState.REJECTED;

/**
 * Decides the release of one PENDING_REVIEW artifact through the API. NOT_FOUND when the caller
 * cannot read its run; FORBIDDEN when its node's policy is `local` (only the operator at the node
 * decides) or when the caller is neither an operator of its node nor ADMIN (project roles do not
 * suffice); CONFLICT when it is not waiting for a decision. An approval queues the `run.release`
 * that tells the node to send the file, in the same transaction (`changes` says so).
 */
export async function decideArtifactRelease(
  em: EntityManager,
  viewer: Viewer,
  input: { id: string; decision: ArtifactDecision; comment: string | null; requestId: string },
  changes: ChangeSet = new ChangeSet(),
): Promise<Artifact> {
  checkUuid("id", input.id);
  if (input.comment !== null && input.comment.length > MAX_COMMENT_CHARS) throw BadInputError.field("comment", `at most ${MAX_COMMENT_CHARS} characters`);
  return em.transactional(async (tx) => {
    const artifact = await tx.findOne(Artifact, { id: input.id });
    if (!artifact) throw NotFoundError.entity("Artifact", input.id);
    await getRun(tx, artifact.runId, viewer).catch((err: unknown) => {
      throw err instanceof NotFoundError ? NotFoundError.entity("Artifact", input.id) : err;
    });
    if (artifact.releasePolicy === ReleasePolicy.LOCAL) {
      throw new ForbiddenError(
        "FORBIDDEN",
        `node ${artifact.nodeId} releases outputs locally: only the node's operator at the node can decide (fem-agent outputs approve|reject ${artifact.runId})`,
        { needed: "the node's operator, on the node" },
      );
    }
    if (!operatesNode(viewer, artifact.nodeId)) throw ForbiddenError.action(`decide the release of node ${artifact.nodeId}'s outputs`, `NODE_OPERATOR of node ${artifact.nodeId}, or ADMIN`);
    const comment = clean(input.comment);
    const rows = await query<{ id: string }>(
      tx,
      `update artifact set state = ?, decided_by = ?, decided_at = now(), comment = ? where id = ? and state = ? returning id`,
      [stateOf(input.decision), viewer.subject, comment, input.id, ArtifactState.PENDING_REVIEW],
    );
    if (rows.length === 0) throw new ConflictError(`artifact ${input.id} is ${artifact.state}: only a PENDING_REVIEW artifact can be decided`, { state: artifact.state });
    changes.outputsChanged([artifact.runId]);
    if (input.decision === ArtifactDecision.APPROVE) await enqueueApprovedRelease(tx, artifact, changes);
    // A rejected file fails the dependents that take it.
    else await settleInputWaiters(tx, [artifact.runId], changes);
    await appendAuditEvent(tx, {
      actor: viewer.subject,
      action: "artifact.decide",
      target: `artifact:${input.id}`,
      outcome: AuditOutcome.OK,
      requestId: input.requestId,
      details: { decision: input.decision, comment, runId: artifact.runId, nodeId: artifact.nodeId, path: artifact.path, via: "api" },
    });
    tx.clear();
    return (await tx.findOneOrFail(Artifact, { id: input.id }))!;
  });
}

/**
 * Applies release decisions the node's operator took on the node: each moves a PENDING_REVIEW
 * artifact of that node's own run attempt (a decision for anything else changes nothing), and is
 * audited with the node as the actor. Call last in the transaction (it appends to the audit log).
 */
export async function applyNodeDecisions(em: EntityManager, events: readonly RunOutputsEvent[], changes: ChangeSet): Promise<number> {
  const rows = events.flatMap((event) =>
    event.decisions.map((d) => ({
      run_id: event.runId,
      attempt: event.attempt,
      node_id: event.nodeId,
      path: clean(d.path),
      state: stateOf(d.decision),
      decided_by: `node:${event.nodeId}/${clean(event.decidedBy)}`,
      decided_at: event.at,
      comment: clean(d.comment),
      request_id: event.requestId,
    })),
  );
  if (rows.length === 0) return 0;
  const changed = await query<{ id: string; run_id: string; node_id: string; path: string; state: string; comment: string | null; decided_by: string; request_id: string }>(
    em,
    `update artifact a set state = m.state, decided_by = m.decided_by, decided_at = m.decided_at, comment = m.comment
     from jsonb_to_recordset(?::jsonb) as m(run_id uuid, attempt int, node_id text, path text, state text, decided_by text, decided_at timestamptz, comment text, request_id text),
       run r
     where r.id = m.run_id and r.attempt = m.attempt and r.node_id = m.node_id
       and a.run_id = r.id and a.path = m.path and a.state = 'PENDING_REVIEW'
     returning a.id, a.run_id, a.node_id, a.path, a.state, a.comment, a.decided_by, m.request_id`,
    [json(rows)],
  );
  changes.outputsChanged(changed.map((row) => row.run_id));
  for (const row of changed) {
    await appendAuditEvent(em, {
      actor: `node:${row.node_id}`,
      action: "artifact.decide",
      target: `artifact:${row.id}`,
      outcome: AuditOutcome.OK,
      requestId: row.request_id,
      details: { decision: row.state === ArtifactState.APPROVED ? "APPROVE" : "REJECT", comment: row.comment, runId: row.run_id, nodeId: row.node_id, path: row.path, decidedBy: row.decided_by, via: "node" },
    });
  }
  return changed.length;
}

/**
 * An AVAILABLE artifact the viewer may download, with the run it belongs to. NOT_FOUND when it does
 * not exist, the viewer cannot read its run, or it is not (or no longer) stored.
 */
export async function downloadableArtifact(em: EntityManager, viewer: Viewer, id: string): Promise<Artifact> {
  checkUuid("id", id);
  const artifact = await em.findOne(Artifact, { id });
  if (!artifact) throw NotFoundError.entity("Artifact", id);
  await getRun(em, artifact.runId, viewer).catch((err: unknown) => {
    throw err instanceof NotFoundError ? NotFoundError.entity("Artifact", id) : err;
  });
  if (artifact.state !== ArtifactState.AVAILABLE || artifact.sha256 === null || artifact.sizeBytes === null) {
    throw new NotFoundError("NOT_FOUND", `artifact ${id} is ${artifact.state}: only an AVAILABLE artifact can be downloaded`, { entity: "Artifact", id });
  }
  return artifact;
}
