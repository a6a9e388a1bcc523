/**
 * One serialisation of a result for every socket it goes to. graphql-ws serialises each `next`
 * message whole, once per subscriber: ten followers of one run's logs cost ten `JSON.stringify`
 * calls of the same ~1 MB batch, on the thread that also stores the next one. Results shared by
 * several subscriptions (shared-subscriptions.ts hands them the same object) are serialised once
 * here and spliced into each socket's message.
 *
 * graphql-ws serialises `{ id, type, payload }` with our replacer and hands the text straight to
 * the socket's `send`, in the same synchronous step: the replacer puts a marker in place of a
 * payload and remembers the payload's JSON (cached per object, so the next socket reuses it), and
 * the socket's `send` puts that JSON in place of the marker. A message without the marker is sent
 * as it is.
 */
import type { WebSocket } from "ws";

/** What the replacer writes in place of a payload (a JSON string; the payload is the message's last field). */
const MARKER = "#fem-serialised-payload#";
const MARKED_TAIL = `"payload":${JSON.stringify(MARKER)}}`;

export interface SharedPayloads {
  /** graphql-ws's `jsonMessageReplacer`. */
  replacer(this: unknown, key: string, value: unknown): unknown;
  /** Makes `socket.send` splice the remembered payload into a marked message. */
  attach(socket: WebSocket): void;
  /** Payloads serialised so far (each object once, whatever the sockets it went to). */
  serialisedCount(): number;
}

export function createSharedPayloads(): SharedPayloads {
  const serialised = new WeakMap<object, string>();
  /** The JSON of the payload the replacer last marked, until the socket's `send` takes it. */
  let pending: string | null = null;
  /** The message being serialised (JSON.stringify hands it to the replacer first, under the key ""). */
  let message: unknown = null;
  let count = 0;

  return {
    replacer(key, value) {
      if (key === "") {
        message = value;
        return value;
      }
      // Only a `next` message's own payload: a field named "payload" inside the data is data.
      if (key !== "payload" || this !== message || (message as { type?: unknown }).type !== "next" || typeof value !== "object" || value === null) return value;
      let json = serialised.get(value);
      if (json === undefined) {
        json = JSON.stringify(value);
        serialised.set(value, json);
        count += 1;
      }
      pending = json;
      return MARKER;
    },

    attach(socket) {
      const send = socket.send.bind(socket) as (data: unknown, ...rest: unknown[]) => void;
      (socket as { send: (data: unknown, ...rest: unknown[]) => void }).send = (data, ...rest) => {
        if (pending !== null && typeof data === "string" && data.endsWith(MARKED_TAIL)) {
          const json = pending;
          pending = null;
          return send(`${data.slice(0, data.length - MARKED_TAIL.length)}"payload":${json}}`, ...rest);
        }
        return send(data, ...rest);
      };
    },

    serialisedCount: () => count,
  };
}
