/**
 * Where the latency scenario's milliseconds go: every hop of a run from the mutation to the
 * subscriber, stamped in one clock (agent, orchestrator and PostgreSQL share the machine) from
 * what each party already records (the run's and the outbox's timestamps, the agent's journal)
 * and from taps on the in-process orchestrator (its pubsub, node-event intake, relay wake and SQL
 * log). Commit statements are not stamped: each hop that ends in a commit includes it in the next.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Orchestrator } from "../src/app.js";
import type { TestEnv } from "../test/support/env.js";
import { percentile } from "./lib.js";

/** Epoch ms with sub-ms resolution where the source has it. */
type Stamp = number;

interface RunStamps {
  mutationSent?: Stamp;
  mutationAnswered?: Stamp;
  submitAnnounced?: Stamp;
  runningReceived?: Stamp;
  runningAnnounced?: Stamp;
  runningSeen?: Stamp;
  terminalReceived?: Stamp;
  terminalAnnounced?: Stamp;
  terminalSeen?: Stamp;
}

export interface LatencyTrace {
  stamp(runId: string, field: keyof RunStamps, at?: Stamp): void;
  /** When the orchestrator handed the run's RUNNING to its subscribers. */
  announcedRunning(runId: string): Stamp | undefined;
  /** The median of every hop over `runIds`, in order, for the report's breakdown. */
  breakdown(env: TestEnv, runIds: string[], agentSandboxDir: string): Promise<{ label: string; ms: number }[]>;
}

export const now = (): Stamp => performance.timeOrigin + performance.now();

/** Taps the orchestrator; its pubsub, intake and relay keep working as before. */
export function traceLatency(orchestrator: Orchestrator, sqlLog: { at: Stamp; sql: string }[]): LatencyTrace {
  const runs = new Map<string, RunStamps>();
  const of = (runId: string) => runs.get(runId) ?? (runs.set(runId, {}), runs.get(runId)!);
  const stamp = (runId: string, field: keyof RunStamps, at = now()) => {
    const stamps = of(runId);
    stamps[field] ??= at;
  };
  const relayWakes: Stamp[] = [];

  const { pubsub, ingestion, relay } = orchestrator;
  const publish = pubsub.publish.bind(pubsub);
  pubsub.publish = (topic, payload) => {
    const run = payload as { id?: string; state?: string };
    if (topic.startsWith("run:") && run.id) {
      if (run.state === "QUEUED") stamp(run.id, "submitAnnounced");
      if (run.state === "RUNNING") stamp(run.id, "runningAnnounced");
      if (run.state === "SUCCEEDED" || run.state === "FAILED") stamp(run.id, "terminalAnnounced");
    }
    publish(topic, payload);
  };
  const accept = ingestion.accept.bind(ingestion);
  ingestion.accept = (delivery) => {
    const at = now();
    try {
      const event = JSON.parse(delivery.body.toString("utf8")) as { type?: string; runId?: string; state?: string };
      if (event.type === "run.state" && event.runId) {
        if (event.state === "RUNNING") stamp(event.runId, "runningReceived", at);
        if (event.state === "SUCCEEDED" || event.state === "FAILED") stamp(event.runId, "terminalReceived", at);
      }
    } catch {
      // not ours to judge: ingestion dead-letters it
    }
    accept(delivery);
  };
  const wake = relay.wake.bind(relay);
  relay.wake = () => {
    relayWakes.push(now());
    wake();
  };

  return {
    stamp,
    announcedRunning: (runId) => runs.get(runId)?.runningAnnounced,
    async breakdown(env, runIds, agentSandboxDir) {
      const rows = await env.sql<Record<string, string | number | null>>(
        `select r.id, extract(epoch from r.created_at) * 1000 as created, extract(epoch from r.dispatched_at) * 1000 as dispatched,
           extract(epoch from o.sent_at) * 1000 as relay_began, extract(epoch from r.accepted_at) * 1000 as accepted,
           extract(epoch from r.started_at) * 1000 as started, extract(epoch from r.finished_at) * 1000 as finished, r.wall_ms
         from run r join outbox o on o.payload->>'runId' = r.id::text and o.payload->>'type' = 'run.dispatch'
         where r.id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`,
        [JSON.stringify(runIds)],
      );
      const journaled = await journalAccepts(agentSandboxDir);
      const confirms = sqlLog.filter((q) => q.sql.includes("update outbox set sent_at")).map((q) => q.at);
      const firstAfter = (stamps: Stamp[], after: number) => stamps.find((s) => s >= after);
      const hops: [string, (number | undefined)[]][] = [
        ["mutation sent → run row built", []],
        ["run built → submit committed (announced)", []],
        ["submit committed → scheduler's transaction", []],
        ["scheduler's transaction → committed (relay woken)", []],
        ["relay woken → relay's transaction", []],
        ["relay's transaction → broker confirmed (row marked)", []],
        ["confirmed → agent took the dispatch (relay commit, delivery, checks)", []],
        ["agent took → ACCEPTED (journal fsync, ack)", []],
        ["ACCEPTED → process started (sandbox, spawn)", []],
        ["process started → RUNNING reached the orchestrator", []],
        ["RUNNING received → stored and announced", []],
        ["RUNNING announced → subscriber saw it", []],
        ["process started → exited (wall)", []],
        ["exited → terminal state sent", []],
        ["terminal sent → reached the orchestrator", []],
        ["terminal received → stored and announced", []],
        ["terminal announced → subscriber saw it", []],
        ["(mutation sent → answered)", []],
      ];
      for (const row of rows) {
        const id = String(row.id);
        const s = runs.get(id) ?? {};
        const n = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));
        const created = n(row.created);
        const dispatched = n(row.dispatched);
        const relayBegan = n(row.relay_began);
        const started = n(row.started);
        const exited = started !== undefined && row.wall_ms !== null ? started + Number(row.wall_ms) : undefined;
        const woken = dispatched === undefined ? undefined : firstAfter(relayWakes, dispatched);
        const confirmed = relayBegan === undefined ? undefined : firstAfter(confirms, relayBegan);
        const chain = [
          s.mutationSent,
          created,
          s.submitAnnounced,
          dispatched,
          woken,
          relayBegan,
          confirmed,
          journaled.get(id),
          n(row.accepted),
          started,
          s.runningReceived,
          s.runningAnnounced,
          s.runningSeen,
        ];
        for (let i = 0; i + 1 < chain.length; i++) hops[i][1].push(diff(chain[i], chain[i + 1]));
        const tail = [started, exited, n(row.finished), s.terminalReceived, s.terminalAnnounced, s.terminalSeen];
        for (let i = 0; i + 1 < tail.length; i++) hops[12 + i][1].push(diff(tail[i], tail[i + 1]));
        hops[17][1].push(diff(s.mutationSent, s.mutationAnswered));
      }
      return hops.map(([label, values]) => {
        const known = values.filter((v): v is number => v !== undefined);
        return { label: `${label} (p50)`, ms: known.length === 0 ? NaN : Math.round(percentile(known, 50) * 10) / 10 };
      });
    },
  };
}

function diff(from: number | undefined, to: number | undefined): number | undefined {
  return from === undefined || to === undefined ? undefined : to - from;
}

/** When the agent began to accept each run (its journal's `accepted` entry, written before the fsync). */
async function journalAccepts(sandboxDir: string): Promise<Map<string, number>> {
  const accepted = new Map<string, number>();
  const text = await readFile(join(sandboxDir, "journal.jsonl"), "utf8").catch(() => "");
  for (const line of text.split("\n")) {
    if (!line) continue;
    const entry = JSON.parse(line) as { event?: string; runId?: string; at?: string };
    if (entry.event === "accepted" && entry.runId && entry.at) accepted.set(entry.runId, Date.parse(entry.at));
  }
  return accepted;
}
