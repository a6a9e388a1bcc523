/**
 * Delivery of live subscriptions to many WebSockets. Subscribers of one document, variables and
 * viewer (one share key) whose source is a plain live subscriber form a channel: one source for all
 * of them, each event executed and serialised once, kept in the channel's log until every member
 * has it. Writing to the sockets is not done where the event is published: a delivery loop writes,
 * in slices of at most `sliceMs` between turns of the event loop (setImmediate), so ingestion and
 * scheduling never wait behind 1,000 sockets. When idle it starts at once (after the current turn,
 * so one change set's events still go out together); under load (a slice ran within `batchMs`) it
 * starts `batchMs` after the first new event, so that the events of a burst go to each socket in
 * one write (a system call per socket, not per event and socket).
 *
 * Nothing is dropped silently. A member whose socket holds `highWaterBytes` unsent gets nothing more
 * until it drains (its events wait in the log, shared by all members). One that stays more than
 * `bufferSize` events behind for `lagGraceMs`, or falls `HARD_LIMIT_FACTOR × bufferSize` behind, is
 * closed with CLOSE_SLOW_CONSUMER after what it was already sent.
 */
import { execute, type ExecutionArgs, type ExecutionResult } from "graphql";
import type { WebSocket } from "ws";
import { HARD_LIMIT_FACTOR } from "../live/pubsub.js";

/** Close code for a socket whose client read too slowly to keep up with its subscriptions. */
export const CLOSE_SLOW_CONSUMER = 4503;

/** Where one subscription's results go: its socket and its graphql-ws operation id. */
export interface DeliveryTarget {
  socket: WebSocket;
  id: string;
}

export interface LiveDeliveryOptions {
  /** Events a member may stay behind for longer than `lagGraceMs` (the instance's subscriber buffer). */
  bufferSize: number;
  /** @default 5_000 */
  lagGraceMs?: number;
  /** Unsent bytes on a socket above which it is not written to until it drains (with 1,000 sockets, 64 MiB at most). @default 64 KiB */
  highWaterBytes?: number;
  /** Longest stretch of writing before the event loop gets a turn. @default 4 */
  sliceMs?: number;
  /** Under load (a slice ran this recently), how long new events gather before they are written. @default 10 */
  batchMs?: number;
  /** Applied once to each result before it is serialised (the errors' formatting). */
  format(result: ExecutionResult): ExecutionResult;
}

export interface LiveDelivery {
  /**
   * Joins the subscription to the channel of `key` (created with `source` when there is none; a
   * later member's own `source` is closed, the channel's serves it). The iterator yields nothing:
   * results go straight to `target`; it ends when the subscription is completed or its socket
   * closes, and throws when the member was cut off.
   */
  join(key: string, args: ExecutionArgs, source: AsyncIterator<unknown>, target: DeliveryTarget): AsyncIterableIterator<ExecutionResult>;
  /** Members of every channel beyond its first: subscriptions served by another's source. */
  sharedCount(): number;
}

interface Channel {
  key: string;
  args: ExecutionArgs;
  source: AsyncIterator<unknown>;
  members: Set<Member>;
  /** Serialised results not yet written to every member; `log[0]` is event number `base`. */
  log: string[];
  base: number;
}

interface Member {
  channel: Channel;
  socket: WebSocket;
  /** `{"id":…,"type":"next","payload":` */
  prefix: string;
  /** The number of the next event to write. */
  cursor: number;
  /** Since when it has been more than bufferSize events behind while its socket was full. */
  laggingSince: number | null;
  queued: boolean;
  blocked: boolean;
  ended: boolean;
  settle: { resolve(r: IteratorResult<ExecutionResult>): void; reject(e: Error): void } | null;
}

export class SlowConsumerError extends Error {
  constructor(bufferSize: number) {
    super(`slow consumer: more than ${bufferSize} events stayed unsent; reconnect and subscribe again`);
  }
}

/** Messages written to one member in one visit, so that one busy member does not hold the others. */
const WRITES_PER_VISIT = 128;
/** How often sockets over the high-water mark are looked at again. */
const BLOCKED_POLL_MS = 10;

type Corkable = { cork?(): void; uncork?(): void };

export function createLiveDelivery(options: LiveDeliveryOptions): LiveDelivery {
  const { bufferSize, format } = options;
  const lagGraceMs = options.lagGraceMs ?? 5_000;
  const highWaterBytes = options.highWaterBytes ?? 64 * 1024;
  const sliceMs = options.sliceMs ?? 4;
  const batchMs = options.batchMs ?? 10;
  const hardLimit = bufferSize * HARD_LIMIT_FACTOR;
  const channels = new Map<string, Channel>();
  /** Members with events to write whose socket has room, in the order they will be visited. */
  const ready = new Set<Member>();
  const blocked = new Set<Member>();
  /** A slice is due: at once (setImmediate) to go on, after batchMs for new events. */
  let scheduled = false;
  /** When the last slice ran (performance.now()); -Infinity before the first. */
  let lastSliceAt = -Infinity;
  let pollTimer: NodeJS.Timeout | null = null;
  let members = 0;

  const schedule = (delayMs = 0) => {
    if (scheduled) return;
    scheduled = true;
    if (delayMs > 0) setTimeout(deliverSlice, delayMs);
    else setImmediate(deliverSlice);
  };

  const enqueue = (member: Member) => {
    if (member.queued || member.blocked || member.ended) return;
    member.queued = true;
    ready.add(member);
  };

  function end(member: Member, error: Error | null): void {
    if (member.ended) return;
    member.ended = true;
    members -= 1;
    ready.delete(member);
    blocked.delete(member);
    const channel = member.channel;
    channel.members.delete(member);
    if (channel.members.size === 0) {
      if (channels.get(channel.key) === channel) channels.delete(channel.key);
      void Promise.resolve(channel.source.return?.()).catch(() => undefined);
    } else trim(channel);
    const settle = member.settle;
    member.settle = null;
    if (error) settle?.reject(error);
    else settle?.resolve({ done: true, value: undefined });
  }

  function cutOff(member: Member): void {
    member.socket.close(CLOSE_SLOW_CONSUMER, `slow consumer: more than ${bufferSize} events unsent`);
    end(member, new SlowConsumerError(bufferSize));
  }

  /** Drops the log's events every member has. */
  function trim(channel: Channel): void {
    let lowest = channel.base + channel.log.length;
    for (const member of channel.members) if (member.cursor < lowest) lowest = member.cursor;
    const drop = lowest - channel.base;
    if (drop <= 0) return;
    if (drop === channel.log.length) channel.log = [];
    else channel.log.splice(0, drop);
    channel.base = lowest;
  }

  /** Writes what `member` has not had yet, up to its socket's high-water mark; true when some is left. */
  function write(member: Member, limit: number): boolean {
    const { socket, channel } = member;
    if (socket.readyState !== socket.OPEN) {
      // graphql-ws ends the subscription when the close event comes; nothing more is written.
      end(member, null);
      return false;
    }
    const last = channel.base + channel.log.length;
    if (member.cursor >= last) return false;
    const raw = (socket as unknown as { _socket?: Corkable })._socket;
    raw?.cork?.();
    let written = 0;
    while (member.cursor < last && written < limit && socket.bufferedAmount < highWaterBytes) {
      socket.send(member.prefix + channel.log[member.cursor - channel.base] + "}");
      member.cursor += 1;
      written += 1;
    }
    raw?.uncork?.();
    if (member.cursor >= last) {
      member.laggingSince = null;
      return false;
    }
    if (socket.bufferedAmount >= highWaterBytes) {
      member.blocked = true;
      blocked.add(member);
      armPoll();
    }
    return true;
  }

  function deliverSlice(): void {
    scheduled = false;
    lastSliceAt = performance.now();
    const until = lastSliceAt + sliceMs;
    const touched = new Set<Channel>();
    let visits = 0;
    for (const member of ready) {
      ready.delete(member);
      member.queued = false;
      touched.add(member.channel);
      if (write(member, WRITES_PER_VISIT)) enqueue(member);
      if ((++visits & 15) === 0 && performance.now() >= until) break;
    }
    for (const channel of touched) trim(channel);
    if (ready.size > 0) schedule();
  }

  function armPoll(): void {
    if (pollTimer) return;
    pollTimer = setTimeout(pollBlocked, BLOCKED_POLL_MS);
    pollTimer.unref();
  }

  /** Sockets that drained get written to again; those left behind too long are cut off. */
  function pollBlocked(): void {
    pollTimer = null;
    const now = performance.now();
    for (const member of [...blocked]) {
      const behind = member.channel.base + member.channel.log.length - member.cursor;
      if (member.socket.readyState !== member.socket.OPEN) {
        end(member, null);
        continue;
      }
      if (member.socket.bufferedAmount < highWaterBytes) {
        member.blocked = false;
        blocked.delete(member);
        enqueue(member);
        continue;
      }
      if (behind <= bufferSize) member.laggingSince = null;
      else if (member.laggingSince === null) member.laggingSince = now;
      else if (now - member.laggingSince >= lagGraceMs) cutOff(member);
    }
    if (ready.size > 0) schedule();
    if (blocked.size > 0) armPoll();
  }

  function append(channel: Channel, json: string): void {
    channel.log.push(json);
    if (channel.log.length > hardLimit) {
      // Memory stays bounded: whoever is this far behind is cut off.
      const oldest = channel.base + channel.log.length - hardLimit;
      for (const member of [...channel.members]) if (member.cursor < oldest) cutOff(member);
      trim(channel);
    }
    for (const member of channel.members) enqueue(member);
    // Batch only under load: an idle instance delivers at once, without a fixed delay.
    schedule(performance.now() - lastSliceAt < batchMs ? batchMs : 0);
  }

  async function pump(channel: Channel): Promise<void> {
    let failure: Error | null = null;
    try {
      for (;;) {
        const next = await channel.source.next();
        if (next.done || channel.members.size === 0) break;
        const executed = execute({ ...channel.args, rootValue: next.value });
        const result = executed instanceof Promise ? await executed : executed;
        append(channel, JSON.stringify(format(result)));
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    // The source ended: each member gets what the log holds for it, then the end.
    for (const member of [...channel.members]) {
      if (member.socket.readyState === member.socket.OPEN) write(member, Number.MAX_SAFE_INTEGER);
      end(member, failure);
    }
  }

  return {
    join(key, args, source, target) {
      let channel = channels.get(key);
      if (channel) void Promise.resolve(source.return?.()).catch(() => undefined);
      else {
        channel = { key, args, source, members: new Set(), log: [], base: 0 };
        channels.set(key, channel);
        void pump(channel);
      }
      const member: Member = {
        channel,
        socket: target.socket,
        prefix: `{"id":${JSON.stringify(target.id)},"type":"next","payload":`,
        cursor: channel.base + channel.log.length,
        laggingSince: null,
        queued: false,
        blocked: false,
        ended: false,
        settle: null,
      };
      channel.members.add(member);
      members += 1;
      const iterator: AsyncIterableIterator<ExecutionResult> = {
        next: () =>
          member.ended
            ? Promise.resolve({ done: true, value: undefined })
            : new Promise<IteratorResult<ExecutionResult>>((resolve, reject) => (member.settle = { resolve, reject })),
        return: async () => {
          end(member, null);
          return { done: true, value: undefined };
        },
        throw: async (err: unknown) => {
          end(member, null);
          throw err;
        },
        [Symbol.asyncIterator]: () => iterator,
      };
      return iterator;
    },
    sharedCount: () => members - channels.size,
  };
}
