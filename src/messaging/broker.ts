/**
 * The orchestrator's rascal connection to RabbitMQ: declares the topology, publishes live events
 * and exposes the subscriptions (node events, dead letters, live events). Dispatches go through
 * dispatch-publisher.ts.
 */
import rascal from "rascal";
import { maskUrl, toError } from "../shared/index.js";
import { orchestratorTopology, PUBLICATIONS, SUBSCRIPTIONS, type TopologyOptions } from "./topology.js";
import type { Logger } from "../logger.js";

/** A consumed node event, settled once: ack, retry later (requeue) or dead-letter. */
export interface NodeEventDelivery {
  content: unknown;
  messageId: string | undefined;
  routingKey: string;
  ack(): void;
  retry(error: Error): void;
  deadLetter(error: Error): void;
}


export interface DeadLetterDelivery {
  routingKey: string;
  messageId: string | null;
  body: string;
  headers: Record<string, unknown>;
  ack(): void;
  retry(error: Error): void;
}

export interface Broker {
  /** Best-effort, unconfirmed publish to the live-events fanout. */
  publishLive(payload: unknown): void;
  consumeNodeEvents(handler: (delivery: NodeEventDelivery) => void): Promise<void>;
  consumeLive(handler: (payload: unknown) => void): Promise<void>;
  consumeDeadLetters(handler: (letter: DeadLetterDelivery) => void): Promise<void>;
  /** Stops consuming (node events and dead letters first); publishing still works. */
  stopConsuming(): Promise<void>;
  stop(): Promise<void>;
}

type Subscription = Awaited<ReturnType<rascal.BrokerAsPromised["subscribe"]>>;

export async function createBroker(options: TopologyOptions, logger: Logger): Promise<Broker> {
  const config = rascal.withDefaultConfig(orchestratorTopology(options) as rascal.BrokerConfig);
  const broker = await rascal.BrokerAsPromised.create(config);
  broker.on("error", (err: unknown) => logger.warn("broker error", { error: toError(err).message }));
  broker.on("vhost_initialised", () => {
    logger.info("broker connection (re)established", { url: maskUrl(options.amqpUrl) });
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

  return {
    publishLive(payload) {
      if (stopped) return;
      broker
        .publish(PUBLICATIONS.live, payload)
        .then((session) => session.on("error", () => undefined))
        .catch((err: unknown) => logger.warn("live event not published", { error: toError(err).message }));
    },

    async consumeNodeEvents(handler) {
      await subscribe(SUBSCRIPTIONS.nodeEvents, (message, content, ackOrNack) => {
        handler({
          content,
          messageId: message.properties.messageId as string | undefined,
          routingKey: message.fields.routingKey,
          ack: () => ackOrNack(),
          retry: (error) => ackOrNack(error, { strategy: "nack", requeue: true, defer: 1_000 } as never),
          deadLetter: (error) => ackOrNack(error, { strategy: "nack" }),
        });
      });
    },

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

    async stopConsuming() {
      for (const subscription of subscriptions.splice(0)) {
        await subscription.cancel().catch(() => undefined);
      }
    },

    async consumeLive(handler) {
      await subscribe(SUBSCRIPTIONS.live, (_message, content) => handler(content));
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
