/** The orchestrator's whole RabbitMQ topology as one rascal configuration. */
import { durableQueueOptions, EXCHANGE_TYPES, EXCHANGES, QUEUES } from "./contracts.js";

export interface TopologyOptions {
  amqpUrl: string;
  instanceId: string;
  /** Node events handled at once. */
  ingestPrefetch: number;
}

/** The vhost named by an AMQP URL's path ("/" when it has none). */
export function vhostOf(amqpUrl: string): string {
  const path = decodeURIComponent(new URL(amqpUrl).pathname.replace(/^\//, ""));
  return path === "" ? "/" : path;
}

/** Hides the password of a URL for messages. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

export function liveQueueName(instanceId: string): string {
  return `fem.orchestrator.live.${instanceId}`;
}

export const PUBLICATIONS = { live: "live" } as const;
export const SUBSCRIPTIONS = { nodeEvents: "node-events", live: "live", deadLetters: "dead-letters" } as const;

function exchange(name: keyof typeof EXCHANGE_TYPES) {
  return { assert: true, type: EXCHANGE_TYPES[name], options: { durable: true } };
}

export function orchestratorTopology(options: TopologyOptions): Record<string, unknown> {
  const vhost = vhostOf(options.amqpUrl);
  const liveQueue = liveQueueName(options.instanceId);
  return {
    vhosts: {
      [vhost]: {
        connection: {
          url: options.amqpUrl,
          socketOptions: { noDelay: true, timeout: 10_000 },
          retry: { min: 500, max: 5_000, factor: 2, strategy: "exponential" },
        },
        publicationChannelPools: { confirmPool: { max: 50 } },
        exchanges: {
          [EXCHANGES.dispatch]: exchange(EXCHANGES.dispatch),
          [EXCHANGES.nodeEvents]: exchange(EXCHANGES.nodeEvents),
          [EXCHANGES.live]: exchange(EXCHANGES.live),
          [EXCHANGES.deadLetter]: exchange(EXCHANGES.deadLetter),
        },
        queues: {
          [QUEUES.nodeEvents]: { assert: true, options: durableQueueOptions },
          [QUEUES.deadLetters]: { assert: true, options: { durable: true, arguments: { "x-queue-type": "quorum" } } },
          [liveQueue]: { assert: true, options: { durable: false, exclusive: true, autoDelete: true, arguments: { "x-max-length": 100_000 } } },
        },
        bindings: {
          nodeEvents: { source: EXCHANGES.nodeEvents, destination: QUEUES.nodeEvents, bindingKey: "#" },
          deadLetters: { source: EXCHANGES.deadLetter, destination: QUEUES.deadLetters, bindingKey: "#" },
          live: { source: EXCHANGES.live, destination: liveQueue, bindingKey: "" },
        },
        publications: {
          [PUBLICATIONS.live]: {
            exchange: EXCHANGES.live,
            confirm: false,
            options: { persistent: false, mandatory: false, contentType: "application/json" },
          },
        },
        subscriptions: {
          [SUBSCRIPTIONS.nodeEvents]: {
            queue: QUEUES.nodeEvents,
            prefetch: options.ingestPrefetch,
            closeTimeout: 5_000,
            contentType: "application/json",
            retry: { min: 500, max: 5_000, factor: 2, strategy: "exponential" },
          },
          [SUBSCRIPTIONS.deadLetters]: {
            queue: QUEUES.deadLetters,
            prefetch: 50,
            closeTimeout: 2_000,
            // Dead letters may not be JSON at all: take every body as text.
            contentType: "text/plain",
            retry: { min: 500, max: 5_000, factor: 2, strategy: "exponential" },
          },
          [SUBSCRIPTIONS.live]: {
            queue: liveQueue,
            prefetch: 1_000,
            closeTimeout: 2_000,
            contentType: "application/json",
            options: { noAck: true },
            retry: { min: 500, max: 5_000, factor: 2, strategy: "exponential" },
          },
        },
      },
    },
  };
}
