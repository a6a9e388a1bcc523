/**
 * At start, the log spools a previous agent process left (`log-spool.ts`) are sent again: lines
 * the broker had confirmed are stored once (ingestion is idempotent on run, attempt and seq), lines
 * it had not are stored now. A spool is removed once all its lines are confirmed.
 */
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { logLineSchema, MAX_LINES_PER_BATCH, WIRE_VERSION, type LogLineWire } from "../messaging/contracts.js";
import { errorCode, toError } from "../shared/index.js";
import type { AgentLogger } from "./log.js";
import type { Outbox } from "./outbox.js";

export interface LeftoverSpool {
  runId: string;
  attempt: number;
  dir: string;
}

export interface ReplayResult {
  /** The highest seq read (0 when the spool held no readable line). */
  lastSeq: number;
  lines: number;
}

/** The spools under `<sandboxDir>/spool`, keyed `<runId>:<attempt>`. */
export async function listLeftoverSpools(sandboxDir: string): Promise<Map<string, LeftoverSpool>> {
  const root = path.join(sandboxDir, "spool");
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch (err) {
    if (errorCode(err) === "ENOENT") return new Map();
    throw new Error(`cannot read the log spool ${root}`, { cause: toError(err) });
  }
  const spools = new Map<string, LeftoverSpool>();
  for (const name of names) {
    // `<runId>-<attempt>`: run ids hold dashes themselves, so the attempt is after the last one.
    const match = /^(.+)-(\d+)$/.exec(name);
    if (!match) continue;
    const spool = { runId: match[1]!, attempt: Number(match[2]), dir: path.join(root, name) };
    spools.set(`${spool.runId}:${spool.attempt}`, spool);
  }
  return spools;
}

/**
 * Sends every line of a leftover spool through the outbox in seq order, in batches of at most
 * `maxBatchBytes` (waiting while the outbox is congested, so memory stays bounded), and removes the
 * spool once the broker confirmed them all. Resolves when every batch is queued; never rejects.
 */
export async function replaySpool(
  spool: LeftoverSpool,
  settings: { nodeId: string; maxBatchBytes: number },
  deps: { outbox: Outbox; log: AgentLogger },
): Promise<ReplayResult> {
  const tag = `run ${spool.runId}#${spool.attempt}`;
  let lastSeq = 0;
  let count = 0;
  let skipped = 0;
  let refused = false;
  const sends: Promise<boolean>[] = [];
  let batch: LogLineWire[] = [];
  let batchBytes = 0;

  const send = async () => {
    if (batch.length === 0) return;
    const lines = batch;
    batch = [];
    batchBytes = 0;
    if (deps.outbox.congested()) await deps.outbox.whenUncongested();
    const sent = deps.outbox.send({ type: "run.logs", v: WIRE_VERSION, nodeId: settings.nodeId, runId: spool.runId, attempt: spool.attempt, lines });
    sends.push(
      sent.then((ok) => {
        // The outbox stopped: the rest stays in the spool for the next start.
        if (!ok) refused = true;
        return ok;
      }),
    );
  };

  try {
    // Fresh again, so that pruning by FEM_SANDBOX_RETENTION_MS leaves it alone while it is sent.
    const now = new Date();
    await fs.utimes(spool.dir, now, now);
    for (const file of await segmentFiles(spool.dir)) {
      const reader = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
      for await (const text of reader) {
        if (refused) break;
        const line = parseLine(text);
        // A torn last line (the crash hit a write) or a line out of order is left out.
        if (line === null || line.seq <= lastSeq) {
          if (text.trim() !== "") skipped += 1;
          continue;
        }
        batch.push(line);
        batchBytes += line.text.length + 80;
        lastSeq = line.seq;
        count += 1;
        if (batch.length >= MAX_LINES_PER_BATCH || batchBytes >= settings.maxBatchBytes) await send();
      }
      if (refused) break;
    }
    await send();
  } catch (err) {
    deps.log.error(`${tag}: cannot read its log spool ${spool.dir}: ${toError(err).message}`);
    return { lastSeq, lines: count };
  }
  if (skipped > 0) deps.log.warn(`${tag}: skipped ${skipped} unreadable line(s) of its log spool`);
  if (count > 0) deps.log.info(`${tag}: sending ${count} spooled log line(s) again (up to seq ${lastSeq})`);
  void Promise.all(sends).then(async (results) => {
    if (!results.every(Boolean)) return;
    await fs.rm(spool.dir, { recursive: true, force: true }).catch((err: unknown) => deps.log.warn(`${tag}: cannot remove its log spool: ${toError(err).message}`));
  });
  return { lastSeq, lines: count };
}

async function segmentFiles(dir: string): Promise<string[]> {
  const names = await fs.readdir(dir).catch((err: unknown) => (errorCode(err) === "ENOENT" ? [] : Promise.reject(err)));
  return names
    .filter((name) => /^\d{12}\.jsonl$/.test(name))
    .sort()
    .map((name) => path.join(dir, name));
}

function parseLine(text: string): LogLineWire | null {
  try {
    const parsed = logLineSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
