/**
 * The node-reported transitions (accept, start, finish): each is a compare-and-set on (state,
 * attempt, node), so a duplicate or late message, or one for an older attempt, changes nothing.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import type { RunStateEvent } from "../../messaging/contracts.js";
import { query } from "../../db/sql.js";
import { RunState, type ChangeSet } from "../../kernel/index.js";
import { rowToRun, type RunRecord } from "../run.mapper.js";
import { settleRuns } from "./follow-ups.js";
import { enqueueCancel } from "./node-messages.js";
import { fromStates, type RunOperation } from "./table.js";

/** The operation a reported state performs. */
const operationOf: Record<RunStateEvent["state"], RunOperation> = {
  ACCEPTED: "accept",
  RUNNING: "start",
  SUCCEEDED: "finish",
  FAILED: "finish",
  CANCELLED: "finish",
};

export interface TransitionOptions {
  maxResultBytes: number;
  /** Called for a report the compare-and-set refused, with the run's state at that moment. */
  onIgnored?: (event: RunStateEvent, current: RunState | null) => void;
}

/**
 * Applies node-reported states in order, then their follow-ups (retries, task and workflow
 * state). Returns the runs that changed. A terminal report for a run that already ended (e.g.
 * cancelled here first) still fills in its usage and exit code; a start report for a run
 * cancelled here re-sends the cancel to the node.
 */
export async function applyReportedStates(
  em: EntityManager,
  events: RunStateEvent[],
  changes: ChangeSet,
  options: TransitionOptions,
): Promise<RunRecord[]> {
  const changed: RunRecord[] = [];
  const recancel: { id: string; attempt: number; nodeId: string }[] = [];
  for (const event of events) {
    const row = await casUpdate(em, event, options);
    if (row) {
      changed.push(row);
      continue;
    }
    const current = await lateReport(em, event);
    options.onIgnored?.(event, current);
    if (current === RunState.CANCELLED && (event.state === "ACCEPTED" || event.state === "RUNNING")) {
      recancel.push({ id: event.runId, attempt: event.attempt, nodeId: event.nodeId });
    }
  }
  await enqueueCancel(em, recancel, "the run was cancelled", changes);
  changes.addRuns(changed);
  await settleRuns(em, changed, changes);
  return changed;
}

async function casUpdate(em: EntityManager, event: RunStateEvent, options: TransitionOptions): Promise<RunRecord | null> {
  const sets: string[] = ["state = ?"];
  const params: unknown[] = [event.state];
  if (event.state === "ACCEPTED") {
    sets.push("accepted_at = ?");
    params.push(event.at);
  } else if (event.state === "RUNNING") {
    sets.push("started_at = ?", "accepted_at = coalesce(accepted_at, ?)");
    params.push(event.at, event.at);
  } else {
    const result = resultJson(event.result, options);
    const message = result.dropped ? [event.message, result.dropped].filter(Boolean).join("; ") : (event.message ?? null);
    sets.push("finished_at = ?", "exit_code = ?", "failure_reason = ?", "message = ?", "result = ?::jsonb");
    params.push(event.at, event.exitCode ?? null, event.failureReason ?? null, message, result.json);
    sets.push(...usageSets(event, params));
    // A start report may arrive after the end report (another orchestrator took it): derive it.
    sets.push("accepted_at = coalesce(accepted_at, started_at, ?::timestamptz - ? * interval '1 millisecond')");
    sets.push("started_at = coalesce(started_at, ?::timestamptz - ? * interval '1 millisecond')");
    params.push(event.at, event.usage?.wallMs ?? 0, event.at, event.usage?.wallMs ?? 0);
  }
  params.push(event.runId, event.attempt, event.nodeId);
  const from = fromStates(operationOf[event.state]);
  const rows = await query(
    em,
    `update run set ${sets.join(", ")}
     where id = ? and attempt = ? and node_id = ? and state in (${from})
     returning *`,
    params,
  );
  return rows.length > 0 ? rowToRun(rows[0]) : null;
}

function usageSets(event: RunStateEvent, params: unknown[]): string[] {
  const usage = event.usage;
  if (!usage) return [];
  params.push(usage.wallMs, usage.cpuUserMs, usage.cpuSystemMs, usage.peakRssBytes, usage.outputBytes);
  return ["wall_ms = ?", "cpu_user_ms = ?", "cpu_system_ms = ?", "peak_rss_bytes = ?", "output_bytes = ?"];
}

/** The result as JSON text, or why it was dropped (over the size cap). */
function resultJson(result: unknown, options: TransitionOptions): { json: string | null; dropped: string | null } {
  if (result === undefined || result === null) return { json: null, dropped: null };
  const text = JSON.stringify(result);
  const bytes = Buffer.byteLength(text);
  if (bytes <= options.maxResultBytes) return { json: text, dropped: null };
  return { json: null, dropped: `result of ${bytes} bytes dropped: over the ${options.maxResultBytes}-byte limit (FEM_MAX_RESULT_BYTES)` };
}

/** Handles a report the CAS refused; returns the run's current state (null if unknown). */
async function lateReport(em: EntityManager, event: RunStateEvent): Promise<RunState | null> {
  if (event.state === "ACCEPTED" || event.state === "RUNNING" || !event.usage) {
    const rows = await query<{ state: RunState }>(em, `select state from run where id = ? and attempt = ? and node_id = ?`, [
      event.runId,
      event.attempt,
      event.nodeId,
    ]);
    return rows[0]?.state ?? null;
  }
  const params: unknown[] = [];
  const sets = usageSets(event, params);
  const rows = await query<{ state: RunState }>(
    em,
    `update run set ${sets.join(", ")}, exit_code = coalesce(exit_code, ?)
     where id = ? and attempt = ? and node_id = ? and wall_ms is null and state in ('CANCELLED','FAILED')
     returning state`,
    [...params, event.exitCode ?? null, event.runId, event.attempt, event.nodeId],
  );
  return rows[0]?.state ?? null;
}
