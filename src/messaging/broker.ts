/**
 * The orchestrator's rascal connection to RabbitMQ: declares the topology, publishes live events
 * and exposes the subscriptions (node events, dead letters, live events). Dispatches go through
 * dispatch-publisher.ts.
 */
import rascal from "rascal";
import { maskUrl, toError, withTimeout } from "../shared/index.js";
import { DEAD_LETTER_HEADERS, QUEUES } from "./contracts.js";
import { orchestratorTopology, PUBLICATIONS, SUBSCRIPTIONS, type TopologyOptions } from "./topology.js";
import type { Logger } from "../logger.js";

/** A consumed node event, settled once: ack, retry later (requeue) or dead-letter. */
export interface NodeEventDelivery {
  /** The raw body, not parsed yet: its size is checked first. */
  body: Buffer;
  messageId: string | undefined;
  routingKey: string;
  /** The AMQP `user_id` property: RabbitMQ refuses a message whose `user_id` is not the publisher's own user. */
  userId: string | undefined;
  /** The AMQP headers (a chunk's fields travel in one). */
  headers: Record<string, unknown>;
  ack(): void;
  retry(error: Error): void;
  /**
   * Dead-letters the message. With a `reason`, the first `MAX_DEAD_LETTER_BODY_BYTES` of the body
   * are republished to the dead-letter exchange carrying that reason (then the message is acked);
   * without one, the broker dead-letters it as `rejected`.
   */
  deadLetter(error: Error, reason?: string): void;
}

/** The header naming the instance that published a live message. */
const LIVE_ORIGIN_HEADER = "fem-origin";

/** Bytes of a body kept when the orchestrator republishes a dead letter itself. @default 65_536 */
export const MAX_DEAD_LETTER_BODY_BYTES = 65_536;
/** Longest wait for the broker to confirm a republished dead letter. @default 10_000 */
const DEAD_LETTER_PUBLISH_TIMEOUT_MS = 10_000;


export interface DeadLetterDelivery {
  routingKey: string;
  messageId: string | null;
  body: string;
  headers: Record<string, unknown>;
  ack(): void;
  retry(error: Error): void;
}

export interface Broker {
  /** Best-effort, unconfirmed publish to the live-events fanout (other instances receive it; this one does not). */
  publishLive(payload: unknown): void;
  consumeNodeEvents(handler: (delivery: NodeEventDelivery) => void): Promise<void>;
  /** Consumes chunks of released output files (their own queue), with the same delivery shape. */
  consumeChunks(handler: (delivery: NodeEventDelivery) => void): Promise<void>;
  consumeLive(handler: (payload: unknown) => void): Promise<void>;
  consumeDeadLetters(handler: (letter: DeadLetterDelivery) => void): Promise<void>;
  /** Whether rascal's connection is up now (false from a disconnect until it has reconnected). */
  isConnected(): boolean;
  /** Stops consuming (node events and dead letters first); publishing still works. */
  stopConsuming(): Promise<void>;
  stop(): Promise<void>;
}

type Subscription = Awaited<ReturnType<rascal.BrokerAsPromised["subscribe"]>>;

export async function createBroker(options: TopologyOptions, logger: Logger): Promise<Broker> {
  const config = rascal.withDefaultConfig(orchestratorTopology(options) as rascal.BrokerConfig);
  const broker = await rascal.BrokerAsPromised.create(config);
  broker.on("error", (err: unknown) => logger.warn("broker error", { error: toError(err).message }));
  let connected = true;
  broker.on("vhost_initialised", (details: { connectionUrl?: string } | undefined) => {
    connected = true;
    // rascal's connectionUrl is the node it reached (of several, with failover), password masked.
    logger.info("broker connection (re)established", { url: details?.connectionUrl ?? maskUrl(options.amqpUrl) });
  });
  broker.on("disconnect", () => {
    connected = false;
  });

  const subscriptions: Subscription[] = [];
  let stopped = false;

  async function subscribe(name: string, onMessage: (message: import("amqplib").Message, content: unknown, ackOrNack: rascal.AckOrNack) => void) {
    const subscription = await broker.subscribe(name);
    subscription.on("message", onMessage);
    subscription.on("error", (err: unknown) => logger.warn("subscription error", { subscription: name, error: toError(err).message }));
    subscription.on("invalid_content", (err: unknown, _message: unknown, ackOrNack: rascal.AckOrNack) => {
      logger.warn("dead-lettering a message that is not JSON", { subscription: name, error: toError(err).message });
      ackOrNack(toError(err), { strategy: "nack" });
    });
    subscription.on("redeliveries_exceeded", (err: unknown, _message: unknown, ackOrNack: rascal.AckOrNack) => {
      ackOrNack(toError(err), { strategy: "nack" });
    });
    subscriptions.push(subscription);
  }

  /** Publishes the start of `message` to the dead-letter exchange with why; resolves once confirmed. */
  async function republishDeadLetter(message: import("amqplib").Message, error: Error, reason: string, queue: string): Promise<void> {
    const headers = {
      [DEAD_LETTER_HEADERS.reason]: reason,
      [DEAD_LETTER_HEADERS.queue]: queue,
      [DEAD_LETTER_HEADERS.problem]: error.message.slice(0, 1_000),
      [DEAD_LETTER_HEADERS.sizeBytes]: message.content.length,
    };
    const session = await broker.publish(PUBLICATIONS.deadLetter, message.content.subarray(0, MAX_DEAD_LETTER_BODY_BYTES), {
      routingKey: message.fields.routingKey,
      options: { headers, messageId: message.properties.messageId as string | undefined, contentType: "application/octet-stream" },
    });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        session.on("success", () => resolve());
        session.on("error", (err: unknown) => reject(toError(err)));
      }),
      DEAD_LETTER_PUBLISH_TIMEOUT_MS,
      "dead letter publish confirm",
    );
  }

  async function consumeDeliveries(name: string, queue: string, handler: (delivery: NodeEventDelivery) => void): Promise<void> {
      await subscribe(name, (message, _content, ackOrNack) => {
        const nack = (error: Error) => ackOrNack(error, { strategy: "nack" });
        handler({
          body: message.content,
          messageId: message.properties.messageId as string | undefined,
          routingKey: message.fields.routingKey,
          userId: message.properties.userId as string | undefined,
          headers: (message.properties.headers as Record<string, unknown> | undefined) ?? {},
          ack: () => ackOrNack(),
          retry: (error) => ackOrNack(error, { strategy: "nack", requeue: true, defer: 1_000 } as never),
          deadLetter: (error, reason) => {
            if (reason === undefined) return nack(error);
            republishDeadLetter(message, error, reason, queue).then(
              () => ackOrNack(),
              (err: unknown) => {
                logger.warn("could not republish a dead letter; the broker dead-letters it as rejected", { error: toError(err).message });
                nack(error);
              },
            );
          },
        });
      });
    }

  return {
    publishLive(payload) {
      if (stopped) return;
      // Serialised here, with the origin in a header: the fanout hands every message back to its
      // own instance too, which drops it unparsed (a batch of log lines is ~1 MB of JSON).
      broker
        .publish(PUBLICATIONS.live, Buffer.from(JSON.stringify(payload)), { options: { headers: { [LIVE_ORIGIN_HEADER]: options.instanceId } } })
        .then((session) => session.on("error", () => undefined))
        .catch((err: unknown) => logger.warn("live event not published", { error: toError(err).message }));
    },

    consumeNodeEvents: (handler) => consumeDeliveries(SUBSCRIPTIONS.nodeEvents, QUEUES.nodeEvents, handler),
    consumeChunks: (handler) => consumeDeliveries(SUBSCRIPTIONS.chunks, QUEUES.chunks, handler),

    async consumeDeadLetters(handler) {
      await subscribe(SUBSCRIPTIONS.deadLetters, (message, content, ackOrNack) => {
        handler({
          routingKey: message.fields.routingKey,
          messageId: (message.properties.messageId as string | undefined) ?? null,
          body: typeof content === "string" ? content : Buffer.isBuffer(content) ? content.toString("utf8") : JSON.stringify(content),
          headers: (message.properties.headers ?? {}) as Record<string, unknown>,
          ack: () => ackOrNack(),
          retry: (error) => ackOrNack(error, { strategy: "nack", requeue: true, defer: 1_000 } as never),
        });
      });
    },

    isConnected: () => connected && !stopped,

    async stopConsuming() {
      for (const subscription of subscriptions.splice(0)) {
        await subscription.cancel().catch(() => undefined);
      }
    },

    async consumeLive(handler) {
      await subscribe(SUBSCRIPTIONS.live, (message, content) => {
        if (message.properties.headers?.[LIVE_ORIGIN_HEADER] === options.instanceId) return;
        let payload: unknown;
        try {
          payload = JSON.parse((content as Buffer).toString("utf8"));
        } catch (err) {
          logger.warn("dropped a live message that is not JSON", { error: toError(err).message });
          return;
        }
        handler(payload);
      });
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      for (const subscription of subscriptions) {
        await subscription.cancel().catch(() => undefined);
      }
      await broker.shutdown().catch((err: unknown) => logger.warn("broker shutdown", { error: toError(err).message }));
    },
  };
}
