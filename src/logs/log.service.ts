/** Stores log lines in bulk (idempotent on (run, seq)) and reads them back by cursor. */
import type { EntityManager } from "@mikro-orm/postgresql";
import type { LogLineWire, RunLogsEvent } from "../messaging/contracts.js";
import { json, query } from "../db/sql.js";
import type { ChangeSet, LogChange, LogStream } from "../kernel/index.js";
import type { LogLine } from "./log-line.entity.js";

/** Lines per INSERT statement: large enough to amortise the round trip, small enough to stream. */
const INSERT_CHUNK_ROWS = 5_000;

/**
 * Inserts the lines of many `run.logs` events in a few statements (one per 5,000 lines). Lines
 * already stored, and lines of a run that is not this node's or not this attempt, are ignored.
 * Returns how many lines were newly stored.
 */
export async function storeLogBatches(em: EntityManager, events: RunLogsEvent[], changes: ChangeSet): Promise<number> {
  if (events.length === 0) return 0;
  // Which (run, node, attempt) the lines claim to belong to, checked once per run, not per line.
  const claims = [...new Map(events.map((e) => [`${e.runId}/${e.nodeId}/${e.attempt}`, { id: e.runId, node_id: e.nodeId, attempt: e.attempt }])).values()];
  const owners = await query<{ id: string; task_id: string; workflow_id: string }>(
    em,
    `select r.id, r.task_id, r.workflow_id from jsonb_to_recordset(?::jsonb) as x(id uuid, node_id text, attempt int)
     join run r on r.id = x.id and r.node_id = x.node_id and r.attempt = x.attempt`,
    [json(claims)],
  );
  const owner = new Map(owners.map((o) => [o.id, o]));
  const lines = new Map<string, LogLineWire>();
  for (const event of events) {
    if (!owner.has(event.runId)) continue;
    for (const line of event.lines) lines.set(`${event.runId}/${line.seq}`, line);
  }
  const rows = [...lines].map(([key, l]) => ({ run_id: key.slice(0, key.indexOf("/")), seq: l.seq, stream: l.stream, at: l.at, text: l.text }));
  const inserted: { run_id: string; seq: number }[] = [];
  for (let from = 0; from < rows.length; from += INSERT_CHUNK_ROWS) {
    inserted.push(
      ...(await query<{ run_id: string; seq: number }>(
        em,
        `insert into log_line (run_id, seq, stream, at, text)
         select * from jsonb_to_recordset(?::jsonb) as x(run_id uuid, seq int, stream text, at timestamptz, text text)
         on conflict do nothing
         returning run_id, seq`,
        [json(rows.slice(from, from + INSERT_CHUNK_ROWS))],
      )),
    );
  }
  if (inserted.length === 0) return 0;
  const perRun = new Map<string, { count: number; bytes: number; lines: LogChange["lines"] }>();
  for (const { run_id, seq } of inserted) {
    const line = lines.get(`${run_id}/${seq}`)!;
    const entry = perRun.get(run_id) ?? { count: 0, bytes: 0, lines: [] };
    entry.count += 1;
    entry.bytes += Buffer.byteLength(line.text);
    entry.lines.push({ seq, stream: line.stream, at: line.at, text: line.text });
    perRun.set(run_id, entry);
  }
  const counters = [...perRun].map(([id, e]) => ({ id, count: e.count, bytes: e.bytes }));
  await query(
    em,
    `update run r set log_line_count = r.log_line_count + x.count, log_bytes = r.log_bytes + x.bytes
     from jsonb_to_recordset(?::jsonb) as x(id uuid, count int, bytes float8) where r.id = x.id`,
    [json(counters)],
  );
  for (const [runId, entry] of perRun) {
    const o = owner.get(runId)!;
    entry.lines.sort((a, b) => a.seq - b.seq);
    changes.logs.push({ runId, taskId: o.task_id, workflowId: o.workflow_id, lines: entry.lines });
  }
  return inserted.length;
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
