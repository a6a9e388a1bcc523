/**
 * Release decisions taken on the node (`fem-agent outputs approve|reject`). The command drops a
 * request file into `<sandbox>/output-decisions/`; the running agent (or the next one to start)
 * takes it, journals the decision, and reports it to the orchestrator as a `run.outputs` event
 * under the node's own broker identity. The agent stays the only writer of its journal and the
 * only user of the node's credential, and no decision needs the orchestrator to be reachable.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { ARTIFACT_DECISIONS, MAX_ARTIFACT_PATH_CHARS, MAX_MANIFEST_FILES, WIRE_VERSION, type RunOutputsEvent } from "../messaging/contracts.js";
import { errorCode, toError } from "../shared/index.js";
import type { Journal, JournalRecord } from "./journal.js";
import type { AgentLogger } from "./log.js";
import type { Outbox } from "./outbox.js";

/** The folder of pending decision requests in the agent's sandbox directory. */
export const DECISIONS_DIR = "output-decisions";
/** How often the running agent looks for decision requests. @default 500 */
export const DECISION_POLL_MS = 500;

/** One decision request as the command writes it: `files` null means every releasable file of the run. */
export const decisionRequestSchema = z.strictObject({
  requestId: z.string().uuid(),
  runId: z.string().uuid(),
  attempt: z.number().int().min(1),
  decision: z.enum(ARTIFACT_DECISIONS),
  files: z.array(z.string().min(1).max(MAX_ARTIFACT_PATH_CHARS)).min(1).max(MAX_MANIFEST_FILES).nullable(),
  comment: z.string().max(1_000).nullable(),
  decidedBy: z.string().min(1).max(200),
  at: z.string().datetime({ offset: true }),
});
export type DecisionRequest = z.infer<typeof decisionRequestSchema>;

/** The files of a run's manifest that may be decided on: listed and not refused. */
export function releasableFiles(record: JournalRecord): string[] {
  return (record.terminal?.outputs?.files ?? []).filter((f) => f.refused === null).map((f) => f.path);
}

/** The journaled run a request names: the latest attempt of `runId` that left a manifest. */
export function runWithOutputs(records: readonly JournalRecord[], runId: string): JournalRecord | undefined {
  return records.filter((r) => r.runId === runId && r.terminal?.outputs).sort((a, b) => b.attempt - a.attempt)[0];
}

/** The files a request decides on (all releasable ones when it names none), or why it cannot be taken. */
export function decidedFiles(record: JournalRecord | undefined, request: DecisionRequest): { ok: true; files: string[] } | { ok: false; problem: string } {
  if (!record?.terminal?.outputs) return { ok: false, problem: `run ${request.runId} attempt ${request.attempt} left no outputs on this node` };
  const releasable = releasableFiles(record);
  const unknown = (request.files ?? []).filter((f) => !releasable.includes(f));
  if (unknown.length > 0) return { ok: false, problem: `not a releasable output of run ${request.runId}: ${unknown.join(", ")}` };
  const files = request.files ?? releasable;
  if (files.length === 0) return { ok: false, problem: `run ${request.runId} has no releasable output` };
  return { ok: true, files };
}

/** The `run.outputs` event of a request on `files`. */
function decisionEvent(nodeId: string, request: DecisionRequest, files: string[]): RunOutputsEvent {
  return {
    type: "run.outputs",
    v: WIRE_VERSION,
    nodeId,
    runId: request.runId,
    attempt: request.attempt,
    at: request.at,
    requestId: request.requestId,
    decidedBy: request.decidedBy,
    decisions: files.map((file) => ({ path: file, decision: request.decision, comment: request.comment })),
  };
}

/** Writes a request atomically (temporary name, then rename), so the agent never reads half of one; returns its file. */
export async function writeDecisionRequest(sandboxDir: string, request: DecisionRequest): Promise<string> {
  const dir = path.join(sandboxDir, DECISIONS_DIR);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${Date.now()}-${request.requestId}.json`);
  const temporary = path.join(dir, `.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await fs.open(temporary, "wx", 0o600);
  try {
    await handle.writeFile(JSON.stringify(request), "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temporary, file);
  return file;
}

/** Sends a journaled decision and journals it reported once the broker confirmed it; never rejects. */
async function reportDecision(event: RunOutputsEvent, deps: { outbox: Outbox; journal: Journal }): Promise<void> {
  if (!(await deps.outbox.send(event))) return;
  await deps.journal
    .append({ event: "outputs-reported", runId: event.runId, attempt: event.attempt, at: new Date().toISOString(), requestId: event.requestId })
    .catch(() => undefined);
}

/** Sends again every decision a previous agent journaled but could not get confirmed. */
export function resendDecisions(journal: Journal, outbox: Outbox): number {
  let count = 0;
  for (const record of journal.records()) {
    for (const d of record.decisions) {
      if (d.reported) continue;
      count += 1;
      void reportDecision(d.event, { outbox, journal });
    }
  }
  return count;
}

/**
 * Takes decision requests every `pollMs`: each valid one is journaled, then its file removed, then
 * reported; an invalid one is removed with a warning. A poll never overlaps the previous one.
 */
export function watchDecisionRequests(
  settings: { nodeId: string; sandboxDir: string; pollMs?: number },
  deps: { journal: Journal; outbox: Outbox; log: AgentLogger; onDecided?: (runId: string, attempt: number) => void },
): { stop(): Promise<void> } {
  const dir = path.join(settings.sandboxDir, DECISIONS_DIR);
  let stopped = false;
  let polling: Promise<void> | null = null;

  async function take(name: string): Promise<void> {
    const file = path.join(dir, name);
    let request: DecisionRequest;
    try {
      request = decisionRequestSchema.parse(JSON.parse(await fs.readFile(file, "utf8")));
    } catch (err) {
      deps.log.warn(`output decision ${name} is unreadable and was discarded: ${toError(err).message}`);
      await fs.rm(file, { force: true });
      return;
    }
    const decided = decidedFiles(deps.journal.get(request.runId, request.attempt), request);
    if (!decided.ok) {
      deps.log.warn(`output decision ${name} discarded: ${decided.problem}`);
      await fs.rm(file, { force: true });
      return;
    }
    const event = decisionEvent(settings.nodeId, request, decided.files);
    const already = deps.journal.get(event.runId, event.attempt)?.decisions.some((d) => d.event.requestId === event.requestId);
    if (!already) await deps.journal.append({ event: "outputs-decided", runId: event.runId, attempt: event.attempt, at: new Date().toISOString(), decision: event });
    // Removed only once journaled: a crash in between takes the request again, and the journal knows it.
    await fs.rm(file, { force: true });
    deps.log.info(`run ${event.runId}#${event.attempt}: ${request.decision === "APPROVE" ? "approved" : "rejected"} ${event.decisions.length} output(s) on the node (${request.decidedBy})`);
    if (!already) void reportDecision(event, deps);
    deps.onDecided?.(event.runId, event.attempt);
  }

  async function poll(): Promise<void> {
    let names: string[];
    try {
      names = (await fs.readdir(dir)).filter((n) => n.endsWith(".json")).sort();
    } catch (err) {
      if (errorCode(err) !== "ENOENT") deps.log.warn(`cannot read ${dir}: ${toError(err).message}`);
      return;
    }
    for (const name of names) {
      if (stopped) return;
      await take(name).catch((err: unknown) => deps.log.error(`output decision ${name}: ${toError(err).message}; tried again later`));
    }
  }

  const timer = setInterval(() => {
    polling ??= poll().finally(() => (polling = null));
  }, settings.pollMs ?? DECISION_POLL_MS);
  timer.unref();
  polling = poll().finally(() => (polling = null));
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await polling;
    },
  };
}
