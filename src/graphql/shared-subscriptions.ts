/**
 * Subscription execution shared by identical subscriptions: graphql-js executes the selection set
 * once per subscriber and event, which for 1,000 subscribers of one workflow is 1,000 executions
 * of the same document over the same payload. Here the subscribe resolver (the access check) still
 * runs per subscriber, but each event is executed once per distinct (document, operation,
 * variables, viewer) and the result is handed to every subscriber with that key. The cache is
 * keyed by the event object (pubsub hands the same one to every listener), so it lives exactly as
 * long as the event is referenced.
 */
import { createSourceEventStream, execute, print, type ExecutionArgs, type ExecutionResult } from "graphql";
import type { Viewer } from "../kernel/index.js";
import { isLiveSubscriber } from "../live/pubsub.js";
import type { DeliveryTarget, LiveDelivery } from "./live-delivery.js";

type Result = ExecutionResult | Promise<ExecutionResult>;

/** What one subscriber's results may depend on besides the event: its document, variables and who it is. */
export function shareKey(args: ExecutionArgs, viewer: Viewer | null): string {
  const who = viewer
    ? JSON.stringify([viewer.subject, [...viewer.roles].sort(), [...viewer.projects].sort(), [...viewer.operatedNodes].sort()])
    : "anonymous";
  return JSON.stringify([print(args.document), args.operationName ?? null, args.variableValues ?? null, who]);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === "function";
}

/** Maps an async iterator without an async generator, so `return()` reaches the source at once. */
function mapIterator<T, U>(source: AsyncIterator<T>, map: (value: T) => U | Promise<U>): AsyncIterableIterator<U> {
  const iterator: AsyncIterableIterator<U> = {
    async next() {
      const result = await source.next();
      return result.done ? { done: true, value: undefined } : { done: false, value: await map(result.value) };
    },
    async return() {
      await source.return?.();
      return { done: true, value: undefined };
    },
    async throw(err: unknown) {
      await source.return?.();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/** Where results may go straight to the socket, bypassing graphql-ws's one-by-one sending. */
export interface DirectDelivery {
  delivery: LiveDelivery;
  /** The socket and operation of a subscription (null where unknown: then graphql-ws sends). */
  targetOf(args: ExecutionArgs): DeliveryTarget | null;
}

/**
 * A `subscribe` for graphql-ws: like graphql-js's, with each event's execution shared by every
 * subscription whose `keyOf(args)` is equal. With `direct`, a subscription whose source is a plain
 * live subscriber joins the channel of its key (see live-delivery.ts): executed and serialised once
 * per event for all, written to the sockets off the publishing path.
 */
export function createSharedSubscribe(keyOf: (args: ExecutionArgs) => string, direct?: DirectDelivery) {
  const executed = new WeakMap<object, Map<string, Result>>();
  return async (args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> => {
    // The subscribe resolver (the access check) runs for every subscriber.
    const stream = await createSourceEventStream(args);
    if (!isAsyncIterable(stream)) return stream as ExecutionResult;
    const key = keyOf(args);
    const target = direct && isLiveSubscriber(stream) ? direct.targetOf(args) : null;
    if (direct && target) return direct.delivery.join(key, args, stream[Symbol.asyncIterator](), target);
    return mapIterator(stream[Symbol.asyncIterator](), (payload: unknown) => {
      if (typeof payload !== "object" || payload === null) return execute({ ...args, rootValue: payload });
      let results = executed.get(payload);
      if (!results) executed.set(payload, (results = new Map()));
      let result = results.get(key);
      if (!result) results.set(key, (result = execute({ ...args, rootValue: payload })));
      return result;
    });
  };
}
