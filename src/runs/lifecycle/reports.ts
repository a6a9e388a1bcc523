/**
 * The node-reported transitions (accept, start, finish): each is a compare-and-set on (state,
 * attempt, node), so a duplicate or late message, or one for an older attempt, changes nothing.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import type { FailureReasonName, RunStateEvent } from "../../messaging/contracts.js";
import { fitsPgInt, replaceNul, replaceNulDeep } from "../../shared/index.js";
import { query } from "../../db/sql.js";
import { RunState, type ChangeSet } from "../../kernel/index.js";
import { rowToRun, type RunRecord } from "../run.mapper.js";
import { settleRuns } from "./follow-ups.js";
import { enqueueCancel } from "./node-messages.js";
import { fromStates, type RunOperation } from "./table.js";
import { RESET_UNREPORTED } from "./unreported-runs.js";

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
  // Heartbeats that left the run out count at its current state only (unreported-runs.ts).
  if (event.state === "ACCEPTED" || event.state === "RUNNING") sets.push(RESET_UNREPORTED);
  if (event.state === "ACCEPTED") {
    sets.push("accepted_at = ?");
    params.push(event.at);
  } else if (event.state === "RUNNING") {
    sets.push("started_at = ?", "accepted_at = coalesce(accepted_at, ?)");
    params.push(event.at, event.at);
  } else {
    const end = terminalFields(event, options);
    params[0] = end.state;
    sets.push("finished_at = ?", "exit_code = ?", "failure_reason = ?", "message = ?", "result = ?::jsonb");
    params.push(event.at, end.exitCode, end.failureReason, end.message, end.result);
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

interface TerminalFields {
  state: RunStateEvent["state"];
  exitCode: number | null;
  failureReason: FailureReasonName | null;
  message: string | null;
  /** JSON text of the result, or null. */
  result: string | null;
}

/**
 * What a terminal report stores, made safe for PostgreSQL: NUL characters in the message and the
 * result become U+FFFD, a result over the size cap is dropped, and an exit code outside
 * PostgreSQL's integer range is refused and fails the run. Each change is noted in the message.
 */
function terminalFields(event: RunStateEvent, options: TransitionOptions): TerminalFields {
  const notes: string[] = [];
  const message = event.message ? replaceNul(event.message) : null;
  if (message && message.replaced > 0) notes.push(`${message.replaced} NUL character(s) in the message replaced by U+FFFD`);
  let result: string | null = null;
  if (event.result !== undefined && event.result !== null) {
    const clean = replaceNulDeep(event.result);
    if (clean.replaced > 0) notes.push(`${clean.replaced} NUL character(s) in the result replaced by U+FFFD`);
    const text = JSON.stringify(clean.value);
    const bytes = Buffer.byteLength(text);
    if (bytes <= options.maxResultBytes) result = text;
    else notes.push(`result of ${bytes} bytes dropped: over the ${options.maxResultBytes}-byte limit (FEM_MAX_RESULT_BYTES)`);
  }
  let state = event.state;
  let exitCode = event.exitCode ?? null;
  let failureReason = event.failureReason ?? null;
  if (exitCode !== null && !fitsPgInt(exitCode)) {
    notes.push(`exit code ${exitCode} refused: outside the integer range`);
    exitCode = null;
    if (state === "SUCCEEDED") {
      state = "FAILED";
      failureReason = "EXIT_CODE";
    }
  }
  return { state, exitCode, failureReason, message: [message?.text, ...notes].filter(Boolean).join("; ") || null, result };
}

/**
 * The bare form of a terminal report that PostgreSQL refused: FAILED, without the node's result,
 * usage, exit code and message, with why in its message, so the run still ends.
 */
export function bareTerminalReport(event: RunStateEvent, why: string): RunStateEvent {
  return {
    type: event.type,
    v: event.v,
    nodeId: event.nodeId,
    runId: event.runId,
    attempt: event.attempt,
    state: "FAILED",
    at: event.at,
    failureReason: event.state === "FAILED" ? (event.failureReason ?? null) : null,
    message: `the node's ${event.state} report could not be stored (${replaceNul(why).text.slice(0, 1_000)}); stored without its result, usage, exit code and message`,
  };
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
    [...params, event.exitCode !== undefined && event.exitCode !== null && fitsPgInt(event.exitCode) ? event.exitCode : null, event.runId, event.attempt, event.nodeId],
  );
  return rows[0]?.state ?? null;
}
