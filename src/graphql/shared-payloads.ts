/**
 * One serialisation of a result for every socket it goes to. graphql-ws serialises each `next`
 * message whole, once per subscriber: ten followers of one run's logs cost ten `JSON.stringify`
 * calls of the same ~1 MB batch, on the thread that also stores the next one. Results shared by
 * several subscriptions (shared-subscriptions.ts hands them the same object) are serialised once
 * here and spliced into each socket's message.
 *
 * graphql-ws serialises `{ id, type, payload }` with our replacer and hands the text to the socket's
 * `send`: the replacer puts a marker with a number of its own in place of the payload and keeps the
 * payload's JSON as UTF-8 bytes under that number (the bytes cached per object, so the next socket
 * reuses them), and the socket's `send` writes the message in three fragments of one WebSocket text
 * message: the text before the marker, the bytes its number names, and the closing brace. The bytes
 * are written as they are, not encoded again for every socket. A message without a marker is sent
 * as it is. The number ties each message to its own payload, so no socket can get another's.
 */
import type { WebSocket } from "ws";

/** What the replacer writes in place of a payload, before its number (a JSON string; the payload is the message's last field). */
const MARKER = "#fem-serialised-payload:";
const MARKED_HEAD = `"payload":"${MARKER}`;
const MARKED_END = `#"}`;
/** Marked messages not sent yet: graphql-ws sends each as soon as it is serialised, or not at all (its socket closed). */
const MAX_PENDING = 64;

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
  /** The JSON of each marked payload by its marker's number, until the socket's `send` takes it. */
  const pending = new Map<string, Buffer>();
  let nextMark = 0;
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
      const mark = String((nextMark += 1));
      pending.set(mark, json);
      // One whose socket closed before the send is dropped once newer ones pile up.
      if (pending.size > MAX_PENDING) pending.delete(pending.keys().next().value!);
      return `${MARKER}${mark}#`;
    },

    attach(socket) {
      type Callback = (err?: Error) => void;
      const send = socket.send.bind(socket) as (data: string | Buffer, options: { binary?: boolean; fin?: boolean }, cb?: Callback) => void;
      (socket as { send: unknown }).send = (data: unknown, ...rest: unknown[]) => {
        const cb = rest.find((r): r is Callback => typeof r === "function");
        const at = typeof data === "string" && data.endsWith(MARKED_END) ? data.lastIndexOf(MARKED_HEAD) : -1;
        const mark = at >= 0 ? (data as string).slice(at + MARKED_HEAD.length, -MARKED_END.length) : "";
        const json = pending.get(mark);
        if (json !== undefined) {
          pending.delete(mark);
          send(`${(data as string).slice(0, at)}"payload":`, { binary: false, fin: false });
          send(json, { binary: false, fin: false });
          return send("}", { binary: false, fin: true }, cb);
        }
        return (send as (...args: unknown[]) => void)(data, ...rest);
      };
    },

    serialisedCount: () => count,
  };
}
