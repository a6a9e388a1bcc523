/** Stores log lines in bulk (idempotent on (run, seq)) and reads them back by cursor. */
import type { EntityManager } from "@mikro-orm/postgresql";
import type { RunLogsEvent } from "../messaging/contracts.js";
import { json, query } from "../db/sql.js";
import type { ChangeSet, LogChange } from "../runs/change-set.js";
import type { LogStream } from "../runs/run-state.js";

export interface StoredLogLine {
  runId: string;
  seq: number;
  stream: LogStream;
  at: Date;
  text: string;
}

/**
 * Inserts the lines of many `run.logs` events in one statement. Lines already stored, and lines of
 * a run that is not this node's or not this attempt, are ignored. Returns the lines newly stored.
 */
export async function storeLogBatches(em: EntityManager, events: RunLogsEvent[], changes: ChangeSet): Promise<number> {
  if (events.length === 0) return 0;
  const rows = events.flatMap((e) =>
    e.lines.map((l) => ({ run_id: e.runId, node_id: e.nodeId, attempt: e.attempt, seq: l.seq, stream: l.stream, at: l.at, text: l.text })),
  );
  const inserted = await query<{ run_id: string; seq: number; stream: string; at: Date; text: string }>(
    em,
    `insert into log_line (run_id, seq, stream, at, text)
     select x.run_id, x.seq, x.stream, x.at, x.text
     from jsonb_to_recordset(?::jsonb) as x(run_id uuid, node_id text, attempt int, seq int, stream text, at timestamptz, text text)
     join run r on r.id = x.run_id and r.node_id = x.node_id and r.attempt = x.attempt
     order by x.run_id, x.seq
     on conflict do nothing
     returning run_id, seq, stream, at, text`,
    [json(rows)],
  );
  if (inserted.length === 0) return 0;
  const perRun = new Map<string, { count: number; bytes: number; lines: LogChange["lines"] }>();
  for (const line of inserted) {
    const entry = perRun.get(line.run_id) ?? { count: 0, bytes: 0, lines: [] };
    entry.count += 1;
    entry.bytes += Buffer.byteLength(line.text);
    entry.lines.push({ seq: line.seq, stream: line.stream, at: new Date(line.at).toISOString(), text: line.text });
    perRun.set(line.run_id, entry);
  }
  const counters = [...perRun].map(([id, e]) => ({ id, count: e.count, bytes: e.bytes }));
  const owners = await query<{ id: string; task_id: string; workflow_id: string }>(
    em,
    `update run r set log_line_count = r.log_line_count + x.count, log_bytes = r.log_bytes + x.bytes
     from jsonb_to_recordset(?::jsonb) as x(id uuid, count int, bytes float8)
     where r.id = x.id returning r.id, r.task_id, r.workflow_id`,
    [json(counters)],
  );
  for (const owner of owners) {
    const entry = perRun.get(owner.id)!;
    entry.lines.sort((a, b) => a.seq - b.seq);
    changes.logs.push({ runId: owner.id, taskId: owner.task_id, workflowId: owner.workflow_id, lines: entry.lines });
  }
  return inserted.length;
}

/** Lines of a run with `seq > afterSeq`, in order, at most `first`. */
export async function readLogs(em: EntityManager, runId: string, afterSeq: number, first: number): Promise<StoredLogLine[]> {
  const rows = await query<{ seq: number; stream: LogStream; at: Date; text: string }>(
    em,
    `select seq, stream, at, text from log_line where run_id = ? and seq > ? order by seq limit ?`,
    [runId, afterSeq, first],
  );
  return rows.map((r) => ({ runId, seq: r.seq, stream: r.stream, at: new Date(r.at), text: r.text }));
}
