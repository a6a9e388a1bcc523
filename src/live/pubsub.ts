/**
 * In-process publish/subscribe with a bounded queue per subscriber. A burst larger than
 * `bufferSize` (one change set can hold thousands of run transitions) is fine as long as the
 * subscriber drains it below `bufferSize` within `lagGraceMs`; a subscriber that stops reading is
 * cut off with an error after that grace, or at once past `HARD_LIMIT_FACTOR × bufferSize` events,
 * so it can never grow memory without bound.
 */
import { AppError } from "../kernel/index.js";

export interface Subscriber<T> extends AsyncIterableIterator<T> {
  return(): Promise<IteratorResult<T>>;
}

/** Events a subscriber may hold at most, as a multiple of its buffer size. */
export const HARD_LIMIT_FACTOR = 50;

export interface PubSub {
  publish(topic: string, payload: unknown): void;
  /** @param bufferSize events held for this subscriber before it is cut off */
  subscribe<T = unknown>(topic: string, bufferSize?: number): Subscriber<T>;
  /** Calls `listener` for every event of `topic` until the returned function is called. */
  listen(topic: string, listener: (payload: unknown) => void): () => void;
  subscriberCount(topic: string): number;
  /** Subscribers and listeners of every topic together. */
  totalSubscribers(): number;
  /** Resolves once `topic` has at least `count` subscribers; rejects after `timeoutMs`. */
  waitForSubscribers(topic: string, count: number, timeoutMs: number): Promise<void>;
}

const LIVE = Symbol("live subscriber");

/**
 * Whether `value` is a subscriber straight from `PubSub.subscribe`: live events only, from the
 * moment it subscribed, nothing replayed or filtered per subscriber. Subscribers of one document as
 * one viewer may then share one such source.
 */
export function isLiveSubscriber(value: unknown): value is Subscriber<unknown> {
  return typeof value === "object" && value !== null && (value as { [LIVE]?: boolean })[LIVE] === true;
}

export class SlowSubscriberError extends AppError {
  constructor(bufferSize: number) {
    super("UNAVAILABLE", `subscription cancelled: more than ${bufferSize} events stayed unread; resubscribe (log subscriptions resume with afterSeq)`);
  }
}

/**
 * @param defaultBufferSize events a subscriber may keep waiting for longer than `lagGraceMs`
 * @param lagGraceMs how long a subscriber may stay over its buffer size @default 5_000
 */
export function createPubSub(defaultBufferSize: number, lagGraceMs = 5_000): PubSub {
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const watchers = new Set<() => void>();

  function listen(topic: string, listener: (payload: unknown) => void): () => void {
    let set = listeners.get(topic);
    if (!set) listeners.set(topic, (set = new Set()));
    set.add(listener);
    for (const watch of [...watchers]) watch();
    return () => {
      set!.delete(listener);
      if (set!.size === 0) listeners.delete(topic);
    };
  }

  return {
    publish(topic, payload) {
      const set = listeners.get(topic);
      if (!set) return;
      for (const listener of [...set]) listener(payload);
    },

    listen,

    subscribe<T>(topic: string, bufferSize = defaultBufferSize): Subscriber<T> {
      const queue: T[] = [];
      let waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void } | null = null;
      let failure: Error | null = null;
      let done = false;
      let lagTimer: NodeJS.Timeout | null = null;
      const cutOff = () => {
        if (lagTimer) clearTimeout(lagTimer);
        lagTimer = null;
        failure = new SlowSubscriberError(bufferSize);
        queue.length = 0;
        unlisten();
        if (waiting) waiting.reject(failure);
        waiting = null;
      };
      const unlisten = listen(topic, (payload) => {
        if (done || failure) return;
        if (waiting) {
          const w = waiting;
          waiting = null;
          w.resolve({ value: payload as T, done: false });
          return;
        }
        if (queue.length >= bufferSize * HARD_LIMIT_FACTOR) return cutOff();
        queue.push(payload as T);
        if (queue.length > bufferSize && !lagTimer) {
          lagTimer = setTimeout(() => {
            lagTimer = null;
            if (queue.length > bufferSize) cutOff();
          }, lagGraceMs);
          lagTimer.unref();
        }
      });
      const finish = async (): Promise<IteratorResult<T>> => {
        done = true;
        if (lagTimer) clearTimeout(lagTimer);
        unlisten();
        queue.length = 0;
        if (waiting) waiting.resolve({ value: undefined, done: true });
        waiting = null;
        return { value: undefined, done: true };
      };
      const subscriber: Subscriber<T> = {
        next() {
          if (queue.length > 0) {
            const value = queue.shift()!;
            if (queue.length <= bufferSize && lagTimer) {
              clearTimeout(lagTimer);
              lagTimer = null;
            }
            return Promise.resolve({ value, done: false });
          }
          if (failure) return Promise.reject(failure);
          if (done) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve, reject) => (waiting = { resolve, reject }));
        },
        return: finish,
        throw: async (err: unknown) => {
          await finish();
          throw err;
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
      Object.defineProperty(subscriber, LIVE, { value: true });
      return subscriber;
    },

    subscriberCount(topic) {
      return listeners.get(topic)?.size ?? 0;
    },

    totalSubscribers() {
      let total = 0;
      for (const set of listeners.values()) total += set.size;
      return total;
    },

    waitForSubscribers(topic, count, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if ((listeners.get(topic)?.size ?? 0) < count) return;
          clearTimeout(timer);
          watchers.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`no ${count} subscriber(s) on ${topic} within ${timeoutMs} ms`));
        }, timeoutMs);
        watchers.add(check);
        check();
      });
    },
  };
}

/**
 * The events of `source` that `keep` accepts. Closing the result closes `source` at once (an async
 * generator would wait for the next event before it could close, holding the subscription).
 */
export function filterEvents<T>(source: AsyncIterableIterator<T>, keep: (event: T) => boolean): AsyncIterableIterator<T> {
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      for (;;) {
        const result = await source.next();
        if (result.done || keep(result.value)) return result;
      }
    },
    async return() {
      return (await source.return?.()) ?? { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/**
 * Maps each event of `source` with `map`, skipping those it maps to null; one event at a time, in
 * order (an async map: say a visibility check against the database).
 */
export function mapEvents<T, U>(source: AsyncIterableIterator<T>, map: (event: T) => Promise<U | null>): AsyncIterableIterator<U> {
  const iterator: AsyncIterableIterator<U> = {
    async next() {
      for (;;) {
        const result = await source.next();
        if (result.done) return { done: true, value: undefined };
        const mapped = await map(result.value);
        if (mapped !== null) return { done: false, value: mapped };
      }
    },
    async return() {
      await source.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
