/**
 * The one way out for node events: an in-memory FIFO published with confirms, retried with backoff
 * while the broker is away, so nothing is dropped (except surplus heartbeats) and each run's events
 * keep their order, but for a run's log batches and its ACCEPTED and RUNNING reports, which may be in
 * flight together (and then arrive in any order if one is retried: lines carry their seq, and the
 * orchestrator's compare-and-set ignores an ACCEPTED after a RUNNING). Events of different runs may
 * be in flight together (a small window).
 */
import { routingKeyOfNodeEvent, type AgentEvent } from "../messaging/contracts.js";
import { toError, withTimeout } from "../shared/index.js";
import type { AgentLogger } from "./log.js";

export type PublishFn = (event: AgentEvent, target: { routingKey: string; messageId: string }) => Promise<void>;

export interface Outbox {
  /** Queues an event; resolves true once the broker confirmed it, false if it was dropped or the outbox stopped first. */
  send(event: AgentEvent): Promise<boolean>;
  /** Events not yet confirmed. */
  size(): number;
  /** True while unconfirmed events hold more than the soft byte limit; producers that can wait should. */
  congested(): boolean;
  /** Resolves when the outbox is no longer congested (at once if it is not). */
  whenUncongested(): Promise<void>;
  /** Tries to publish what is queued for up to `flushTimeoutMs`, then gives up on the rest. */
  stop(options: { flushTimeoutMs: number }): Promise<void>;
}

export interface OutboxSettings {
  nodeId: string;
  /** Publishes awaiting a confirm at once (never two of the same run, but for log batches). @default 16 */
  windowSize?: number;
  /** Log batches of one run awaiting a confirm at once (a batch's round trip is mostly the broker's fsync). @default 4 */
  logWindow?: number;
  /** Above this many queued events, heartbeats are dropped. @default 50_000 */
  maxEvents?: number;
  /** Estimated wire bytes of unconfirmed events above which producers should wait. @default 16 MiB */
  softLimitBytes?: number;
  /** @default 200 */
  minRetryDelayMs?: number;
  /** @default 5_000 */
  maxRetryDelayMs?: number;
}

interface Entry {
  event: AgentEvent;
  key: string;
  bytes: number;
  state: "queued" | "inflight" | "done";
  settle: (sent: boolean) => void;
}

/** How far past the head the pump looks for events of other runs to publish alongside. */
const SCAN_LIMIT = 256;

/** Deterministic message id, so the orchestrator can drop duplicates of a retried publish. */
export function messageIdOf(event: AgentEvent): string {
  switch (event.type) {
    case "run.state":
      return `${event.runId}:${event.attempt}:state:${event.state}`;
    case "run.logs":
      return `${event.runId}:${event.attempt}:logs:${event.lines[0]?.seq ?? 0}`;
    case "run.outputs":
      return `${event.runId}:${event.attempt}:outputs:${event.requestId}`;
    case "node.heartbeat":
      return `${event.nodeId}:heartbeat:${event.at}`;
    case "run.chunk":
      return `${event.runId}:${event.attempt}:chunk:${event.fileSha256.slice(0, 16)}:${event.chunkBytes}:${event.index}`;
    case "run.output-lost":
      return `${event.runId}:${event.attempt}:output-lost:${event.fileSha256.slice(0, 16)}:${event.at}`;
    case "run.fetch":
      return `${event.runId}:${event.attempt}:fetch:${event.artifactId}:${event.chunks[0]}:${event.at}`;
  }
}

function orderKey(event: AgentEvent): string {
  if (event.type === "node.heartbeat") return "heartbeat";
  // Chunks carry their place in the file: they need no order, so a file's chunks fill the window.
  if (event.type === "run.chunk" || event.type === "run.fetch") return messageIdOf(event);
  return `${event.runId}:${event.attempt}`;
}

/** A run's events that may be in flight with its earlier ones (see `mayStart`). */
function mayOverlap(event: AgentEvent): boolean {
  return event.type === "run.logs" || (event.type === "run.state" && (event.state === "ACCEPTED" || event.state === "RUNNING"));
}

function sizeOf(event: AgentEvent): number {
  if (event.type === "run.chunk") return event.data.length + 500;
  if (event.type !== "run.logs") return 1_000;
  return event.lines.reduce((sum, line) => sum + line.text.length + 80, 200);
}

export function createOutbox(settings: OutboxSettings, deps: { publish: PublishFn; log: AgentLogger }): Outbox {
  const windowSize = settings.windowSize ?? 16;
  const logWindow = settings.logWindow ?? 4;
  const maxEvents = settings.maxEvents ?? 50_000;
  const softLimitBytes = settings.softLimitBytes ?? 16 * 1024 * 1024;
  const minRetryDelayMs = settings.minRetryDelayMs ?? 200;
  const maxRetryDelayMs = settings.maxRetryDelayMs ?? 5_000;
  let queue: Entry[] = [];
  let head = 0;
  let live = 0;
  let liveBytes = 0;
  let inflight = 0;
  let retryDelayMs = minRetryDelayMs;
  let retryTimer: NodeJS.Timeout | null = null;
  let failingSince: number | null = null;
  let dropWarned = false;
  let stopped = false;
  let roomWaiters: (() => void)[] = [];
  let emptyWaiters: (() => void)[] = [];

  function settle(entry: Entry, sent: boolean): void {
    if (entry.state === "done") return;
    entry.state = "done";
    live -= 1;
    liveBytes -= entry.bytes;
    entry.settle(sent);
    while (head < queue.length && queue[head]?.state === "done") head += 1;
    if (liveBytes <= softLimitBytes) roomWaiters = wakeAll(roomWaiters);
    if (live === 0) emptyWaiters = wakeAll(emptyWaiters);
  }

  function pump(): void {
    if (stopped || retryTimer) return;
    if (head > 1_024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
    // Per run: its unconfirmed events seen so far in the scan, and whether they are all in flight and may overlap.
    const ahead = new Map<string, { count: number; overlappingInFlight: boolean }>();
    for (let i = head, scanned = 0; i < queue.length && inflight < windowSize && scanned < SCAN_LIMIT; i += 1, scanned += 1) {
      const entry = queue[i];
      if (!entry || entry.state === "done") continue;
      const before = ahead.get(entry.key) ?? { count: 0, overlappingInFlight: true };
      if (entry.state === "queued" && mayStart(entry, before)) start(entry);
      ahead.set(entry.key, { count: before.count + 1, overlappingInFlight: before.overlappingInFlight && mayOverlap(entry.event) && entry.state === "inflight" });
    }
  }

  /**
   * Events of a run wait until the ones before it are confirmed, except log batches and the
   * ACCEPTED and RUNNING reports: up to `logWindow` of one run are in flight together (the
   * orchestrator stores lines in any order, once each, and takes RUNNING from QUEUED or ACCEPTED).
   * Whatever follows them, the terminal state above all, still waits for every one.
   */
  function mayStart(entry: Entry, before: { count: number; overlappingInFlight: boolean }): boolean {
    if (before.count === 0) return true;
    return mayOverlap(entry.event) && before.overlappingInFlight && before.count < logWindow;
  }

  function start(entry: Entry): void {
    entry.state = "inflight";
    inflight += 1;
    const target = { routingKey: routingKeyOfNodeEvent({ ...entry.event, nodeId: settings.nodeId }), messageId: messageIdOf(entry.event) };
    deps.publish(entry.event, target).then(
      () => {
        release(entry);
        if (failingSince !== null) deps.log.info(`events flow again after ${Date.now() - failingSince} ms (${live - 1} queued)`);
        failingSince = null;
        retryDelayMs = minRetryDelayMs;
        settle(entry, true);
        pump();
      },
      (err: unknown) => {
        release(entry);
        if (entry.state === "done") return;
        entry.state = "queued";
        if (failingSince === null) {
          failingSince = Date.now();
          deps.log.warn(`cannot publish events (${toError(err).message}); keeping them and retrying`);
        }
        scheduleRetry();
      },
    );
  }

  function release(entry: Entry): void {
    inflight -= 1;
  }

  function scheduleRetry(): void {
    if (retryTimer || stopped) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      pump();
    }, retryDelayMs);
    retryDelayMs = Math.min(retryDelayMs * 2, maxRetryDelayMs);
  }

  function dropHeartbeats(): void {
    for (let i = head; i < queue.length && live > maxEvents; i += 1) {
      const entry = queue[i];
      if (entry?.state === "queued" && entry.key === "heartbeat") settle(entry, false);
    }
    if (!dropWarned) deps.log.warn(`more than ${maxEvents} events wait for the broker: dropping heartbeats (never states or logs)`);
    dropWarned = true;
  }

  return {
    send(event) {
      if (stopped) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const entry: Entry = { event, key: orderKey(event), bytes: sizeOf(event), state: "queued", settle: resolve };
        queue.push(entry);
        live += 1;
        liveBytes += entry.bytes;
        if (live > maxEvents) dropHeartbeats();
        else dropWarned = false;
        pump();
      });
    },
    size: () => live,
    congested: () => liveBytes > softLimitBytes,
    whenUncongested: () => (liveBytes <= softLimitBytes || stopped ? Promise.resolve() : new Promise((resolve) => roomWaiters.push(resolve))),
    async stop({ flushTimeoutMs }) {
      if (stopped) return;
      if (live > 0) {
        const flushed = new Promise<void>((resolve) => emptyWaiters.push(resolve));
        await withTimeout(flushed, flushTimeoutMs, "events still unconfirmed").catch(() => undefined);
      }
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      if (live > 0) deps.log.warn(`gave up on ${live} unpublished event(s) after ${flushTimeoutMs} ms`);
      for (let i = head; i < queue.length; i += 1) {
        const entry = queue[i];
        if (entry) settle(entry, false);
      }
      roomWaiters = wakeAll(roomWaiters);
    },
  };
}

function wakeAll(waiters: (() => void)[]): (() => void)[] {
  for (const wake of waiters) wake();
  return [];
}
