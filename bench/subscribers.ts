/** Starts bench/subscribers-worker.js: graphql-ws subscribers on their own thread. */
import { Worker } from "node:worker_threads";
import { TEST_ADMIN_TOKEN } from "../test/support/graphql.js";

export interface SubscriberJob {
  wsUrl: string;
  query: string;
  variables: Record<string, unknown>;
  field: string;
  count: number;
  expected: number;
  timeoutMs: number;
  /** Each subscriber also ends at the workflow's terminal WORKFLOW event. */
  untilWorkflowEnds?: boolean;
}

export interface SubscribersDone {
  received: number[];
  /** Per subscriber: workflow events by kind (RUN, TASK, WORKFLOW). */
  kinds: Record<string, number>[];
  /** Per subscriber: workflow events by kind and state ("RUN:SUCCEEDED"). */
  states: Record<string, number>[];
  /** Per subscriber: a hash of its sequence of events; equal for subscribers that got the same events in the same order. */
  fingerprints: number[];
  problems: string[];
  /** From the worker's start to the last subscriber having everything. */
  ms: number;
}

export function startSubscribers(job: SubscriberJob): { ready: Promise<void>; done: Promise<SubscribersDone> } {
  const worker = new Worker(new URL("./subscribers-worker.js", import.meta.url), { workerData: { token: TEST_ADMIN_TOKEN, ...job } });
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const done = new Promise<SubscribersDone>((resolve, reject) => {
    worker.on("message", (m: { ready?: boolean; done?: boolean } & SubscribersDone) => {
      if (m.ready) markReady();
      if (m.done) resolve(m);
    });
    worker.on("error", reject);
    worker.on("exit", (code) => reject(new Error(`subscriber worker exited (${code})`)));
  });
  return { ready, done };
}
