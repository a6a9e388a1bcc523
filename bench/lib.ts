/** What every bench scenario shares: its result shape, rates, percentiles, the machine and raw baselines. */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { cpus, freemem, loadavg, totalmem } from "node:os";
import amqp from "amqplib";
import { MikroORM } from "@mikro-orm/postgresql";

export interface Figure {
  label: string;
  value: number;
  unit: string;
  /** The raw baseline measured in the same run, in the same unit. */
  baseline?: { label: string; value: number };
  /** The target, as text (e.g. "≥ 5,000 runs/s and ≥ 60 %"). */
  target?: string;
  /** Whether the target was met; undefined when there is none. */
  met?: boolean;
}

export interface ScenarioResult {
  name: string;
  title: string;
  figures: Figure[];
  /** Where the time went: named phases in ms (drawn in the chart). */
  breakdown?: { label: string; ms: number }[];
  notes: string[];
  /** Load average (1 min) when the scenario started and ended. */
  load: { before: number; after: number };
  at: string;
}

export const rate = (count: number, ms: number): number => Math.round((count / ms) * 1000);
export const ratio = (value: number, baseline: number): number => Math.round((value / baseline) * 100) / 100;

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const load1 = (): number => Math.round(loadavg()[0] * 100) / 100;

/** RSS and peak RSS (VmHWM) of a process in MiB, from /proc. */
export async function rssMiB(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: Math.round(kib("VmRSS") / 1024), peak: Math.round(kib("VmHWM") / 1024) };
}

export function machine(): Record<string, string> {
  return {
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB (${Math.round(freemem() / 2 ** 30)} GiB free at start)`,
    node: process.version,
  };
}

/** Rows/s of a multi-row INSERT (1,000 rows per statement) of `lines` log-shaped rows of about `textBytes` bytes. */
export async function rawInsertBaseline(databaseUrl: string, lines: number, textBytes = 100): Promise<number> {
  const orm = await MikroORM.init({ clientUrl: databaseUrl, entities: [], discovery: { warnWhenNoEntities: false } });
  const conn = orm.em.getConnection();
  await conn.execute(`create table bench_raw (run_id uuid, seq int, stream text, at timestamptz, text text, primary key (run_id, seq))`);
  const runId = randomUUID();
  const pad = "x".repeat(Math.max(0, textBytes - 20));
  const started = performance.now();
  for (let from = 1; from <= lines; from += 1_000) {
    const rows = Array.from({ length: Math.min(1_000, lines - from + 1) }, (_, i) => ({ run_id: runId, seq: from + i, stream: "STDOUT", at: new Date().toISOString(), text: `${String(from + i).padStart(8, "0")} ${pad}` }));
    await conn.execute(`insert into bench_raw select * from jsonb_to_recordset(?::jsonb) as x(run_id uuid, seq int, stream text, at timestamptz, text text)`, [JSON.stringify(rows)]);
  }
  const ms = performance.now() - started;
  await conn.execute(`drop table bench_raw`);
  await orm.close(true);
  return rate(lines, ms);
}

/** Msg/s of amqplib confirmed publishing of `count` persistent messages of `bytes` to a quorum queue, `window` unconfirmed at most. */
export async function rawPublishBaseline(url: string, count: number, bytes = 1024, window = 500): Promise<number> {
  const connection = await amqp.connect(url, { noDelay: true });
  const channel = await connection.createConfirmChannel();
  const queue = `bench.raw.${randomUUID()}`;
  await channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
  const started = performance.now();
  await publishWindowed(channel, queue, Buffer.alloc(bytes, "x"), count, window);
  const ms = performance.now() - started;
  await channel.deleteQueue(queue);
  await connection.close();
  return rate(count, ms);
}

/** Publishes `count` persistent copies of `body` to `queue`, at most `window` unconfirmed at a time. */
export async function publishWindowed(channel: amqp.ConfirmChannel, queue: string, body: Buffer, count: number, window: number): Promise<void> {
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < count; i++) {
    while (inflight.size >= window) await Promise.race(inflight);
    const sent: Promise<void> = new Promise<void>((resolve, reject) => channel.sendToQueue(queue, body, { persistent: true }, (err) => (err ? reject(err) : resolve()))).finally(() => inflight.delete(sent));
    inflight.add(sent);
  }
  await Promise.all(inflight);
}

/** Parses `--key=value` flags after the scenario names. */
export function flag(args: string[], key: string, fallback: number): number {
  const found = args.find((a) => a.startsWith(`--${key}=`));
  return found ? Number(found.slice(key.length + 3)) : fallback;
}
