/**
 * `fem-agent outputs list|approve|reject`: the node's operator, at the node, sees the outputs runs
 * left and releases or rejects them. It reads the agent's journal (never writes it) and hands each
 * decision to the agent as a request file, so it works while the agent runs, needs neither the
 * orchestrator nor the node's credential, and a decision taken while the agent is down waits for it.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import type { ArtifactDecisionName } from "../messaging/contracts.js";
import { readJournalRecords, type JournalRecord } from "./journal.js";
import { silentLogger } from "./log.js";
import { parseCommandLine, runSubcommand, UsageError } from "./subcommand.js";
import { DECISIONS_DIR, decidedFiles, runWithOutputs, writeDecisionRequest, type DecisionRequest } from "./output-decisions.js";

export interface OutputsCliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** How long `approve`/`reject` wait for a running agent to take the decision. @default 10_000 */
const WAIT_MS = 10_000;

const USAGE = `usage: fem-agent outputs list [<runId>]                                the outputs runs left on this node, and the decisions on them
       fem-agent outputs approve <runId> [<file>…] [--comment <text>]   release the run's outputs (all of them when no file is named)
       fem-agent outputs reject <runId> [<file>…] [--comment <text>]    keep them on the node for good
  --sandbox-dir <dir>   FEM_SANDBOX_DIR   the agent's sandbox directory, where its journal is (default ./fem-sandbox)
  --wait-ms <ms>                          how long to wait for the running agent to take a decision (default ${WAIT_MS})
A decision is taken by the running agent (or the next one to start) and reported to the orchestrator as the node.`;

const OPTIONS = {
  "sandbox-dir": { type: "string" },
  comment: { type: "string" },
  "wait-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Runs `fem-agent outputs …` (arguments after `outputs`); resolves to the exit code. */
export function runOutputsCommand(argv: readonly string[], io: OutputsCliIo): Promise<number> {
  return runSubcommand("outputs", io.stdout, io.stderr, (print) => outputsCommand(argv, io, print));
}

async function outputsCommand(argv: readonly string[], io: OutputsCliIo, print: (text: string) => void): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, OPTIONS);
  const [command, runId, ...files] = positionals;
  if (values.help || command === undefined) {
    print(USAGE);
    return values.help ? 0 : 1;
  }
  const sandboxDir = path.resolve(values["sandbox-dir"] ?? io.env.FEM_SANDBOX_DIR ?? "./fem-sandbox");
  const records = await readJournalRecords(sandboxDir, silentLogger);
  if (command === "list") {
    if (files.length > 0) throw new UsageError("outputs list takes at most one run id");
    print(describeOutputs(records.filter((r) => r.terminal?.outputs && (runId === undefined || r.runId === runId)), sandboxDir));
    return 0;
  }
  if (command !== "approve" && command !== "reject") throw new UsageError(`unknown command "outputs ${command}"`);
  if (runId === undefined) throw new UsageError(`outputs ${command} takes a run id`);
  if (values.comment !== undefined && values.comment.length > 1_000) throw new UsageError("--comment takes at most 1000 characters");
  const waitMs = Number(values["wait-ms"] ?? WAIT_MS);
  if (!Number.isInteger(waitMs) || waitMs < 0) throw new UsageError(`--wait-ms must be a whole number of milliseconds, got ${values["wait-ms"]}`);
  const record = runWithOutputs(records, runId);
  if (!record) throw new Error(`run ${runId} left no outputs in this node's journal (${sandboxDir})`);
  const decision: ArtifactDecisionName = command === "approve" ? "APPROVE" : "REJECT";
  const request: DecisionRequest = {
    requestId: randomUUID(),
    runId,
    attempt: record.attempt,
    decision,
    files: files.length > 0 ? [...new Set(files)] : null,
    comment: values.comment ?? null,
    decidedBy: operatorName(),
    at: new Date().toISOString(),
  };
  const decided = decidedFiles(record, request);
  if (!decided.ok) throw new Error(decided.problem);
  const file = await writeDecisionRequest(sandboxDir, request);
  const what = `${command === "approve" ? "approved" : "rejected"} ${decided.files.join(", ")} of run ${runId}`;
  if (await taken(file, waitMs)) print(`${what}: recorded by the agent, which reports it to the orchestrator`);
  else print(`${what}: queued in ${path.dirname(file)}; the agent takes it when it runs`);
  return 0;
}

/** The operating-system user who decides, as the orchestrator records it (`node:<id>/<user>`). */
function operatorName(): string {
  try {
    return userInfo().username || "unknown";
  } catch {
    return "unknown";
  }
}

/** Whether the agent removed the request file (it does once the decision is journaled) within `waitMs`. */
async function taken(file: string, waitMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const exists = await fs.access(file).then(() => true, () => false);
    if (!exists) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function describeOutputs(records: JournalRecord[], sandboxDir: string): string {
  if (records.length === 0) return `no run left outputs in this node's journal (${sandboxDir})`;
  const lines: string[] = [];
  for (const r of records) {
    const manifest = r.terminal!.outputs!;
    lines.push(`run ${r.runId} attempt ${r.attempt} (${r.terminal!.state}), policy ${manifest.policy}`);
    const decided = new Map<string, string>();
    for (const d of r.decisions) {
      for (const one of d.event.decisions) decided.set(one.path, `${one.decision === "APPROVE" ? "approved" : "rejected"} by ${d.event.decidedBy}${d.reported ? "" : " (not yet reported)"}`);
    }
    for (const f of manifest.files) {
      if (f.refused !== null) lines.push(`  ${f.path}  refused: ${f.refused}`);
      else lines.push(`  ${f.path}  ${f.sizeBytes} bytes  sha256:${f.sha256}  ${decided.get(f.path) ?? "undecided"}`);
    }
    if (manifest.omitted > 0) lines.push(`  … and ${manifest.omitted} more not listed`);
  }
  lines.push(`pending requests wait in ${path.join(sandboxDir, DECISIONS_DIR)}`);
  return lines.join("\n");
}
