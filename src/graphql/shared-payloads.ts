/**
 * One serialisation of a result for every socket it goes to. graphql-ws serialises each `next`
 * message whole, once per subscriber: ten followers of one run's logs cost ten `JSON.stringify`
 * calls of the same ~1 MB batch, on the thread that also stores the next one. Results shared by
 * several subscriptions (shared-subscriptions.ts hands them the same object) are serialised once
 * here and spliced into each socket's message.
 *
 * graphql-ws serialises `{ id, type, payload }` with our replacer and hands the text straight to
 * the socket's `send`, in the same synchronous step: the replacer puts a marker in place of a
 * payload and remembers the payload's JSON as UTF-8 bytes (cached per object, so the next socket
 * reuses them), and the socket's `send` writes the message in three fragments of one WebSocket text
 * message: the text before the marker, those bytes, and the closing brace. The bytes are written as
 * they are, not encoded again for every socket. A message without the marker is sent as it is.
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
  const serialised = new WeakMap<object, Buffer>();
  /** The JSON of the payload the replacer last marked, until the socket's `send` takes it. */
  let pending: Buffer | null = null;
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
        json = Buffer.from(JSON.stringify(value));
        serialised.set(value, json);
        count += 1;
      }
      pending = json;
      return MARKER;
    },

    attach(socket) {
      type Callback = (err?: Error) => void;
      const send = socket.send.bind(socket) as (data: string | Buffer, options: { binary?: boolean; fin?: boolean }, cb?: Callback) => void;
      (socket as { send: unknown }).send = (data: unknown, ...rest: unknown[]) => {
        const cb = rest.find((r): r is Callback => typeof r === "function");
        if (pending !== null && typeof data === "string" && data.endsWith(MARKED_TAIL)) {
          const json = pending;
          pending = null;
          send(`${data.slice(0, data.length - MARKED_TAIL.length)}"payload":`, { binary: false, fin: false });
          send(json, { binary: false, fin: false });
          return send("}", { binary: false, fin: true }, cb);
        }
        return (send as (...args: unknown[]) => void)(data, ...rest);
      };
    },

    serialisedCount: () => count,
  };
}
