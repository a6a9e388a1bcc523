/**
 * The orchestrator's connection to RabbitMQ: declares the topology, publishes with bounded confirm
 * waits, declares per-node queues on demand and exposes the two subscriptions.
 */
import amqp from "amqplib";
import rascal from "rascal";
import { dispatchRoutingKey, durableQueueOptions, EXCHANGES, nodeQueueNames } from "./contracts.js";
import { maskUrl, orchestratorTopology, PUBLICATIONS, SUBSCRIPTIONS, type TopologyOptions } from "./topology.js";
import { toError } from "../errors.js";
import type { Logger } from "../logger.js";

/** Settles a consumed message: ack, retry later (requeue) or dead-letter. */
export interface Delivery {
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
  /** Publishes a message to the dispatch exchange and waits for the broker's confirm (bounded). */
  publishDispatch(routingKey: string, payload: unknown, messageId: string): Promise<void>;
  /** Best-effort, unconfirmed publish to the live-events fanout. */
  publishLive(payload: unknown): void;
  /** Declares a node's queues and bindings (idempotent; cached per connection). */
  ensureNodeQueues(nodeId: string): Promise<void>;
  consumeNodeEvents(handler: (delivery: Delivery) => void): Promise<void>;
  consumeLive(handler: (payload: unknown) => void): Promise<void>;
  consumeDeadLetters(handler: (letter: DeadLetterDelivery) => void): Promise<void>;
  /** Stops consuming (node events and dead letters first); publishing still works. */
  stopConsuming(): Promise<void>;
  stop(): Promise<void>;
}

type Subscription = Awaited<ReturnType<rascal.BrokerAsPromised["subscribe"]>>;

export interface BrokerHooks {
  /** A confirmed dispatch came back unroutable (its node's queue is gone); publish it again. */
  onReturned?: (messageId: string) => void;
}

export async function createBroker(options: TopologyOptions, logger: Logger, hooks: BrokerHooks = {}): Promise<Broker> {
  const config = rascal.withDefaultConfig(orchestratorTopology(options) as rascal.BrokerConfig);
  const broker = await rascal.BrokerAsPromised.create(config);
  broker.on("error", (err: unknown) => logger.warn("broker error", { error: toError(err).message }));
  broker.on("vhost_initialised", () => {
    declaredNodes.clear();
    logger.info("broker connection (re)established", { url: maskUrl(options.amqpUrl) });
  });

  const subscriptions: Subscription[] = [];
  const declaredNodes = new Set<string>();
  let stopped = false;

  async function publishConfirmed(name: string, payload: unknown, routingKey: string, messageId: string): Promise<void> {
    const session = await broker.publish(name, payload, { routingKey, options: { messageId } } as never);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Aborting drops the held message so a retry with the same id is the only copy.
        (session as unknown as { abort(): void }).abort();
        reject(new Error(`broker did not confirm message ${messageId} within ${options.publishTimeoutMs} ms`));
      }, options.publishTimeoutMs);
      session.on("success", () => {
        clearTimeout(timer);
        resolve();
      });
      session.on("error", (err: unknown) => {
        clearTimeout(timer);
        reject(toError(err));
      });
      session.on("return", () => {
        // Unroutable: a node's queue vanished. The broker confirms such a message all the same, so
        // forget what was declared and have it published again once the queue is declared anew.
        declaredNodes.clear();
        logger.warn("a dispatched message had no queue to go to; it will be published again", { messageId, routingKey });
        hooks.onReturned?.(messageId);
      });
    });
  }

  async function ensureNodeQueues(nodeId: string): Promise<void> {
    if (declaredNodes.has(nodeId)) return;
    // rascal's topology is fixed at start; per-node queues are declared on a short-lived connection.
    const connection = await amqp.connect(options.amqpUrl, { noDelay: true, timeout: 10_000 });
    connection.on("error", () => undefined);
    try {
      const channel = await connection.createChannel();
      const names = nodeQueueNames(nodeId);
      await channel.assertQueue(names.runs, durableQueueOptions);
      await channel.assertQueue(names.control, durableQueueOptions);
      await channel.bindQueue(names.runs, EXCHANGES.dispatch, dispatchRoutingKey(nodeId, "run"));
      await channel.bindQueue(names.control, EXCHANGES.dispatch, dispatchRoutingKey(nodeId, "control"));
      await channel.close();
      declaredNodes.add(nodeId);
    } finally {
      await connection.close().catch(() => undefined);
    }
  }

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
    publishDispatch: (routingKey, payload, messageId) => publishConfirmed(PUBLICATIONS.dispatch, payload, routingKey, messageId),

    publishLive(payload) {
      if (stopped) return;
      broker
        .publish(PUBLICATIONS.live, payload)
        .then((session) => session.on("error", () => undefined))
        .catch((err: unknown) => logger.warn("live event not published", { error: toError(err).message }));
    },

    ensureNodeQueues,

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
