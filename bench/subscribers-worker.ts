/**
 * A worker thread holding `count` graphql-ws subscribers of one document, so that their parsing does
 * not run on the orchestrator's event loop in the bench process. Each subscriber counts items
 * (`lines` of a log batch, or one per event) and checks that log `seq` goes up by one from 1. Posts
 * `{ ready }` once every subscription was sent, and `{ done, received, problems, ms }` when each
 * subscriber has `expected` items (or at `timeoutMs`).
 */
import { parentPort, workerData } from "node:worker_threads";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import type { SubscriberJob } from "./subscribers.js";

type Job = SubscriberJob & { token: string };

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"]);

const job = workerData as Job;
const started = performance.now();
const received = new Array<number>(job.count).fill(0);
const lastSeq = new Array<number>(job.count).fill(0);
/** Per subscriber: events by kind, and a hash of the whole sequence (kind, state, run or task), to compare subscribers. */
const kinds = Array.from({ length: job.count }, () => ({}) as Record<string, number>);
/** Per subscriber: events by kind and state ("RUN:SUCCEEDED"). */
const states = Array.from({ length: job.count }, () => ({}) as Record<string, number>);
const fingerprints = new Array<number>(job.count).fill(0);
const problems: string[] = [];
let finished = 0;
const clients = Array.from({ length: job.count }, () =>
  createClient({ url: job.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams: { authorization: `Bearer ${job.token}` } }),
);

function finish(): void {
  parentPort!.postMessage({ done: true, received, kinds, states, fingerprints, problems: problems.slice(0, 10), ms: performance.now() - started });
  void Promise.all(clients.map((c) => c.dispose())).then(() => process.exit(0));
}

const timer = setTimeout(() => {
  problems.push(`timed out after ${job.timeoutMs} ms`);
  finish();
}, job.timeoutMs);

function subscribe(client: (typeof clients)[number], i: number): void {
  client.subscribe<Record<string, { lines?: { seq: number }[]; kind?: string; state?: string; runId?: string | null; taskId?: string | null }>>(
    { query: job.query, variables: job.variables },
    {
      next: (result) => {
        if (result.errors) {
          problems.push(JSON.stringify(result.errors).slice(0, 300));
          return;
        }
        const item = result.data?.[job.field];
        const lines = item?.lines;
        if (lines) {
          for (const line of lines) {
            if (line.seq !== lastSeq[i] + 1) problems.push(`subscriber ${i}: seq ${line.seq} after ${lastSeq[i]}`);
            lastSeq[i] = line.seq;
          }
          received[i] += lines.length;
        } else received[i] += 1;
        if (item?.kind) {
          kinds[i][item.kind] = (kinds[i][item.kind] ?? 0) + 1;
          const kindState = `${item.kind}:${item.state}`;
          states[i][kindState] = (states[i][kindState] ?? 0) + 1;
          const text = `${item.kind}:${item.state}:${item.runId ?? item.taskId ?? ""};`;
          let hash = fingerprints[i];
          for (let c = 0; c < text.length; c++) hash = (Math.imul(hash, 31) + text.charCodeAt(c)) | 0;
          fingerprints[i] = hash;
        }
        const ended = job.untilWorkflowEnds === true && item?.kind === "WORKFLOW" && TERMINAL.has(item.state ?? "");
        // A batch may carry the agent's SYSTEM lines past the expected count.
        if ((received[i] >= job.expected && received[i] - lines!.length < job.expected) || (lines === undefined && received[i] === job.expected) || ended) {
          finished += 1;
          if (finished === job.count) {
            clearTimeout(timer);
            finish();
          }
        }
      },
      error: (err) => {
        problems.push(`subscriber ${i}: ${JSON.stringify(err instanceof Error ? err.message : err).slice(0, 300)}`);
        // A subscriber that failed gets nothing more: it no longer holds the others' result back.
        if (++finished === job.count) {
          clearTimeout(timer);
          finish();
        }
      },
      complete: () => undefined,
    },
  );
}

/**
 * Connects in groups of CONNECT_GROUP, each once the previous one is connected: 1,000 sign-ins at
 * once exhaust the orchestrator's database pool on a loaded machine (its acquire times out).
 */
const CONNECT_GROUP = 50;
for (let start = 0; start < job.count; start += CONNECT_GROUP) {
  const group = clients.slice(start, start + CONNECT_GROUP);
  await Promise.all(
    group.map(
      (client, k) =>
        new Promise<void>((resolve) => {
          const offConnected = client.on("connected", () => (offConnected(), offClosed(), resolve()));
          const offClosed = client.on("closed", () => (offConnected(), offClosed(), resolve()));
          subscribe(client, start + k);
        }),
    ),
  );
}
parentPort!.postMessage({ ready: true });
