/** Stores log lines in bulk (idempotent on (run, seq)) and reads them back by cursor. */
import type { EntityManager } from "@mikro-orm/postgresql";
import type { LogLineWire, RunLogsEvent } from "../messaging/contracts.js";
import { json, query, queryBound } from "../db/sql.js";
import type { ChangeSet, LogChange, LogStream } from "../kernel/index.js";
import type { LogLine } from "./log-line.entity.js";
import { planLogLines, truncationNotice, type LogPlan, type LogRow, type RunLogState } from "./log-cap.js";

/** Lines per INSERT statement: large enough to amortise the round trip, small enough to stream. */
const INSERT_CHUNK_ROWS = 5_000;

export interface LogStoreOptions {
  /** Log text stored per run; past it the log is truncated (see log-cap.ts). */
  maxLogBytesPerRun: number;
  /**
   * Lock the runs' rows before planning (id order), as near the cap. Without it, runs far from the
   * cap are read unlocked and the cap is checked again when the lines are counted; a run found at
   * the cap then throws `LogCapContention`, and the caller stores the batch again locked.
   */
  lockRuns?: boolean;
  /**
   * Bytes that other transactions of this instance may add to a run meanwhile (the other batch in
   * flight): a run is stored unlocked only when its lines fit under the cap with that much to spare,
   * so two batches of one run never refuse each other's count. @default 0
   */
  unlockedMarginBytes?: number;
  /**
   * Awaited before the runs are locked: the transaction of an earlier batch in flight, so that near
   * the cap a run's batches are planned in the order they came (a later one planned first would
   * leave the earlier one's lines past the truncation notice). Nothing is locked while it waits.
   */
  beforeLocking?: () => Promise<void>;
}

/**
 * Thrown when lines planned without the run's lock would cross its cap now (another transaction
 * stored lines of that run meanwhile): the transaction must roll back and be run again with `lockRuns`.
 */
export class LogCapContention extends Error {
  constructor(runIds: string[]) {
    super(`log lines of run(s) ${runIds.join(", ")} reached the cap while stored unlocked; storing again locked`);
  }
}

interface Owner {
  id: string;
  task_id: string;
  workflow_id: string;
  log_bytes: number;
  log_truncated_seq: number | null;
  log_dropped_to_seq: number | null;
  log_dropped_bytes: number;
}

/** Whether lines can be stored without the run's lock: none truncated yet, and all of them fit with `marginBytes` to spare. */
function farFromCap(o: Owner, lines: Iterable<LogLineWire>, maxBytes: number, marginBytes: number): boolean {
  if (o.log_truncated_seq !== null) return false;
  let bytes = Number(o.log_bytes) + marginBytes;
  for (const line of lines) bytes += Buffer.byteLength(line.text);
  return bytes <= maxBytes;
}

async function selectOwners(em: EntityManager, claims: { id: string; node_id: string; attempt: number }[], lock: boolean): Promise<Owner[]> {
  return query<Owner>(
    em,
    `select r.id, r.task_id, r.workflow_id, r.log_bytes, r.log_truncated_seq, r.log_dropped_to_seq, r.log_dropped_bytes
     from jsonb_to_recordset(?::jsonb) as x(id uuid, node_id text, attempt int)
     join run r on r.id = x.id and r.node_id = x.node_id and r.attempt = x.attempt
     order by r.id${lock ? " for no key update of r" : ""}`,
    [json(claims)],
  );
}

/**
 * Inserts the lines of many `run.logs` events, and counts them on their runs, in a few statements (one per 5,000 lines). Lines
 * already stored, and lines of a run that is not this node's or not this attempt, are ignored;
 * NULs become U+FFFD; past the per-run cap the log ends with one truncation notice. Returns how
 * many lines were newly stored.
 *
 * Runs far from their cap are not locked before the insert: two transactions (of this instance or
 * another) store lines of one run side by side, and only their counting updates take turns. Near
 * the cap, the runs' rows are locked (in id order) so that their bytes are counted in turn.
 */
export async function storeLogBatches(em: EntityManager, events: RunLogsEvent[], changes: ChangeSet, options: LogStoreOptions): Promise<number> {
  if (events.length === 0) return 0;
  // Which (run, node, attempt) the lines claim to belong to, checked once per run, not per line.
  const claims = [...new Map(events.map((e) => [`${e.runId}/${e.nodeId}/${e.attempt}`, { id: e.runId, node_id: e.nodeId, attempt: e.attempt }])).values()];
  let locked = options.lockRuns ?? false;
  if (locked) await options.beforeLocking?.();
  let owners = await selectOwners(em, claims, locked);
  const owner = new Map(owners.map((o) => [o.id, o]));
  const linesOf = new Map<string, Map<number, LogLineWire>>();
  for (const event of events) {
    if (!owner.has(event.runId)) continue;
    const lines = linesOf.get(event.runId) ?? new Map<number, LogLineWire>();
    for (const line of event.lines) lines.set(line.seq, line);
    linesOf.set(event.runId, lines);
  }
  const marginBytes = options.unlockedMarginBytes ?? 0;
  if (!locked && [...linesOf].some(([runId, lines]) => !farFromCap(owner.get(runId)!, lines.values(), options.maxLogBytesPerRun, marginBytes))) {
    locked = true;
    await options.beforeLocking?.();
    owners = await selectOwners(em, claims, true);
    for (const o of owners) owner.set(o.id, o);
  }
  const rows: RowOfRun[] = [];
  const truncations: { id: string; state: RunLogState; noticeText: string | null }[] = [];
  for (const [runId, lines] of linesOf) {
    const plan = await planRun(em, owner.get(runId)!, [...lines.values()], options.maxLogBytesPerRun);
    rows.push(...plan.rows.map((r) => ({ run_id: runId, ...r })));
    if (plan.state.truncatedSeq !== null) {
      truncations.push({ id: runId, state: plan.state, noticeText: plan.noticeChanged ? truncationNotice(plan.state, options.maxLogBytesPerRun) : null });
    }
  }
  // Lines go in 5,000 to a statement, and the new ones are counted on their runs (octet_length is
  // the UTF-8 byte length: the database is UTF8, as Buffer.byteLength counts). The rows travel as
  // `json`, not `jsonb`: read once, the text needs no binary tree built first (10,000 lines:
  // ~150 ms against ~200 ms).
  const inserted = await insertAndCount(em, rows, locked ? null : options.maxLogBytesPerRun);
  await recordTruncations(em, truncations);
  if (inserted.length === 0) return 0;
  const perRun = new Map<string, LogChange["lines"]>();
  const linesOfRun = (runId: string) => {
    let lines = perRun.get(runId);
    if (!lines) perRun.set(runId, (lines = []));
    return lines;
  };
  if (inserted.length === rows.length) {
    // Every line was new (the usual case): no need to match what came back.
    for (const r of rows) linesOfRun(r.run_id).push({ seq: r.seq, stream: r.stream, at: r.at, text: r.text });
  } else {
    const stored = new Map(rows.map((r) => [`${r.run_id}/${r.seq}`, r]));
    for (const { run_id, seq } of inserted) {
      const line = stored.get(`${run_id}/${seq}`)!;
      linesOfRun(run_id).push({ seq, stream: line.stream, at: line.at, text: line.text });
    }
  }
  for (const [runId, lines] of perRun) {
    const o = owner.get(runId)!;
    lines.sort((a, b) => a.seq - b.seq);
    changes.logs.push({ runId, taskId: o.task_id, workflowId: o.workflow_id, lines });
  }
  return inserted.length;
}

type RowOfRun = LogRow & { run_id: string };

/**
 * Inserts the rows, then counts the new ones on their runs in one statement, which locks the runs in
 * id order (two transactions storing lines of the same runs never deadlock). Unlocked (`capBytes`
 * given, the runs read without their lock while another transaction may be storing lines of them),
 * each count checks the cap again on the run's latest row, and a run that would cross it throws
 * `LogCapContention`: the caller rolls back and stores locked.
 */
async function insertAndCount(em: EntityManager, rows: RowOfRun[], capBytes: number | null): Promise<{ run_id: string; seq: number }[]> {
  const inserted: { run_id: string; seq: number }[] = [];
  const counts = new Map<string, { run_id: string; count: number; bytes: number }>();
  for (let from = 0; from < rows.length; from += INSERT_CHUNK_ROWS) {
    const result = await queryBound<{ run_id: string; seq: number; bytes: number }>(
      em,
      `insert into log_line (run_id, seq, stream, at, text)
       select * from json_to_recordset(?::json) as x(run_id uuid, seq int, stream text, at timestamptz, text text)
       on conflict do nothing
       returning run_id, seq, octet_length(text) as bytes`,
      [json(rows.slice(from, from + INSERT_CHUNK_ROWS))],
    );
    for (const row of result) {
      inserted.push(row);
      const count = counts.get(row.run_id) ?? { run_id: row.run_id, count: 0, bytes: 0 };
      count.count += 1;
      count.bytes += row.bytes;
      counts.set(row.run_id, count);
    }
  }
  if (counts.size === 0) return inserted;
  const counted = await queryBound<{ id: string }>(
    em,
    `with c as (
       select * from json_to_recordset(?::json) as c(run_id uuid, count int, bytes float8)
     ), locked as (
       select r.id from run r where r.id in (select run_id from c) order by r.id for no key update
     )
     update run r set log_line_count = r.log_line_count + c.count, log_bytes = r.log_bytes + c.bytes
     from c
     where r.id = c.run_id and r.id in (select id from locked)${capBytes === null ? "" : " and r.log_truncated_seq is null and r.log_bytes + c.bytes <= ?"}
     returning r.id`,
    capBytes === null ? [json([...counts.values()])] : [json([...counts.values()]), capBytes],
  );
  if (counted.length < counts.size) {
    const done = new Set(counted.map((c) => c.id));
    throw new LogCapContention([...counts.keys()].filter((id) => !done.has(id)));
  }
  return inserted;
}

/** The plan for one run's lines; lines already stored are left out first when the cap is near. */
async function planRun(em: EntityManager, o: Owner, lines: LogLineWire[], maxBytes: number): Promise<LogPlan> {
  const before: RunLogState = {
    logBytes: Number(o.log_bytes),
    truncatedSeq: o.log_truncated_seq,
    droppedToSeq: o.log_dropped_to_seq,
    droppedBytes: Number(o.log_dropped_bytes),
  };
  const batchBytes = lines.reduce((sum, l) => sum + Buffer.byteLength(l.text), 0);
  if (before.truncatedSeq === null && before.logBytes + batchBytes <= maxBytes) return planLogLines(lines, before, maxBytes);
  // Near or past the cap, a redelivered line must not count twice: leave out what is stored.
  const existing = await query<{ seq: number }>(
    em,
    `select seq from log_line where run_id = ? and seq in (select value::int from jsonb_array_elements_text(?::jsonb))`,
    [o.id, json(lines.map((l) => l.seq))],
  );
  const known = new Set(existing.map((e) => e.seq));
  return planLogLines(lines.filter((l) => !known.has(l.seq)), before, maxBytes);
}

async function recordTruncations(em: EntityManager, truncations: { id: string; state: RunLogState; noticeText: string | null }[]): Promise<void> {
  for (const t of truncations) {
    await query(em, `update run set log_truncated_seq = ?, log_dropped_to_seq = ?, log_dropped_bytes = ? where id = ?`, [
      t.state.truncatedSeq,
      t.state.droppedToSeq,
      t.state.droppedBytes,
      t.id,
    ]);
    if (t.noticeText !== null) {
      await query(em, `update log_line set text = ? where run_id = ? and seq = ?`, [t.noticeText, t.id, t.state.truncatedSeq]);
    }
  }
}

/** Characters of text one read returns at most (one line more when a single line is longer). @default 1_048_576 */
export const LOG_PAGE_CHARS = 1_048_576;

/**
 * Lines of a run with `seq > afterSeq`, in order, at most `first`, and no more after their text
 * reached `maxChars` (so at least one line, and a page holds about `maxChars` whatever the lines'
 * length). A page whose text adds up to `maxChars` or more may have been cut short.
 */
export async function readLogs(em: EntityManager, runId: string, afterSeq: number, first: number, maxChars: number = LOG_PAGE_CHARS): Promise<LogLine[]> {
  // The running sum is taken over the `first` rows only, not over every later line of the run.
  const rows = await query<{ seq: number; stream: LogStream; at: Date; text: string }>(
    em,
    `select seq, stream, at, text from (
       select seq, stream, at, text, sum(length(text)) over (order by seq) - length(text) as before
       from (select seq, stream, at, text from log_line where run_id = ? and seq > ? order by seq limit ?) page
     ) counted where before < ? order by seq`,
    [runId, afterSeq, first, maxChars],
  );
  return rows.map((r) => ({ runId, seq: r.seq, stream: r.stream, at: new Date(r.at), text: r.text }));
}
