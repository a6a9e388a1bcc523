/** The orchestrator's whole RabbitMQ topology as one rascal configuration. */
import { amqpSocketOptions, amqpUrlsOf, BROKER_RETRY, vhostOf, type AmqpTls } from "../shared/index.js";
import { CHUNK_BINDING_KEY, durableQueueOptions, EXCHANGE_TYPES, EXCHANGES, NODE_EVENT_BINDING_KEYS, QUEUES } from "./contracts.js";

export interface TopologyOptions {
  amqpUrl: string;
  /** Other nodes of the cluster, tried in order after `amqpUrl` (same vhost). @default [] */
  amqpFailoverUrls?: string[];
  /** The CA, certificate and key of an `amqps://` URL (read from FEM_AMQP_*_FILE). */
  tls: AmqpTls;
  instanceId: string;
  /** Node events handled at once. */
  ingestPrefetch: number;
  /** Chunks of output files handled at once (each up to 256 KiB in memory). @default 16 */
  chunkPrefetch?: number;
  /** AMQP heartbeat timeout asked of the broker; 0 turns it off. @default 10 (rascal's) */
  heartbeatSeconds?: number;
}

export function liveQueueName(instanceId: string): string {
  return `fem.orchestrator.live.${instanceId}`;
}

/** The AMQP `connection_name` of every connection of an orchestrator instance. */
export function orchestratorConnectionName(instanceId: string): string {
  return `fem-orchestrator ${instanceId}`;
}

export const PUBLICATIONS = { live: "live", deadLetter: "dead-letter" } as const;
export const SUBSCRIPTIONS = { nodeEvents: "node-events", chunks: "chunks", live: "live", deadLetters: "dead-letters" } as const;

function exchange(name: keyof typeof EXCHANGE_TYPES) {
  return { assert: true, type: EXCHANGE_TYPES[name], options: { durable: true } };
}

export function orchestratorTopology(options: TopologyOptions): Record<string, unknown> {
  const vhost = vhostOf(options.amqpUrl);
  const liveQueue = liveQueueName(options.instanceId);
  return {
    // rascal takes a connection's retry only from these defaults (it drops one given per connection).
    defaults: { vhosts: { connection: { retry: BROKER_RETRY } } },
    vhosts: {
      [vhost]: {
        // In the order given: the first URL is preferred, the others are where rascal goes next.
        connectionStrategy: "fixed",
        connections: amqpUrlsOf(options).map((url) => ({
          url,
          options: { heartbeat: options.heartbeatSeconds ?? 10 },
          // The connection's name (management UI, rabbitmqctl) tells which instance holds it.
          socketOptions: { noDelay: true, timeout: 10_000, clientProperties: { connection_name: orchestratorConnectionName(options.instanceId) }, ...amqpSocketOptions(url, options.tls) },
        })),
        publicationChannelPools: { confirmPool: { max: 50 } },
        exchanges: {
          [EXCHANGES.dispatch]: exchange(EXCHANGES.dispatch),
          [EXCHANGES.nodeEvents]: exchange(EXCHANGES.nodeEvents),
          [EXCHANGES.live]: exchange(EXCHANGES.live),
          [EXCHANGES.deadLetter]: exchange(EXCHANGES.deadLetter),
        },
        queues: {
          [QUEUES.nodeEvents]: { assert: true, options: durableQueueOptions },
          [QUEUES.chunks]: { assert: true, options: durableQueueOptions },
          [QUEUES.deadLetters]: { assert: true, options: { durable: true, arguments: { "x-queue-type": "quorum" } } },
          [liveQueue]: { assert: true, options: { durable: false, exclusive: true, autoDelete: true, arguments: { "x-max-length": 100_000 } } },
        },
        bindings: {
          // Every event type but chunks, which have their own queue (a vhost that still has the
          // former "#" binding also copies chunks here; ingestion drops those copies).
          nodeEvents: { source: EXCHANGES.nodeEvents, destination: QUEUES.nodeEvents, bindingKeys: [...NODE_EVENT_BINDING_KEYS] },
          chunks: { source: EXCHANGES.nodeEvents, destination: QUEUES.chunks, bindingKey: CHUNK_BINDING_KEY },
          deadLetters: { source: EXCHANGES.deadLetter, destination: QUEUES.deadLetters, bindingKey: "#" },
          live: { source: EXCHANGES.live, destination: liveQueue, bindingKey: "" },
        },
        publications: {
          [PUBLICATIONS.live]: {
            exchange: EXCHANGES.live,
            confirm: false,
            options: { persistent: false, mandatory: false, contentType: "application/json" },
          },
          [PUBLICATIONS.deadLetter]: { exchange: EXCHANGES.deadLetter, confirm: true, options: { persistent: true } },
        },
        subscriptions: {
          [SUBSCRIPTIONS.nodeEvents]: {
            queue: QUEUES.nodeEvents,
            prefetch: options.ingestPrefetch,
            closeTimeout: 5_000,
            // Raw bytes: ingestion checks the size before it parses anything.
            contentType: "application/octet-stream",
            retry: BROKER_RETRY,
          },
          [SUBSCRIPTIONS.chunks]: {
            queue: QUEUES.chunks,
            prefetch: options.chunkPrefetch ?? 16,
            closeTimeout: 5_000,
            contentType: "application/octet-stream",
            retry: BROKER_RETRY,
          },
          [SUBSCRIPTIONS.deadLetters]: {
            queue: QUEUES.deadLetters,
            prefetch: 50,
            closeTimeout: 2_000,
            // Dead letters may not be JSON at all: take every body as text.
            contentType: "text/plain",
            retry: BROKER_RETRY,
          },
          [SUBSCRIPTIONS.live]: {
            queue: liveQueue,
            prefetch: 1_000,
            closeTimeout: 2_000,
            // Raw bytes: this instance's own messages are dropped by their header, unparsed.
            contentType: "application/octet-stream",
            options: { noAck: true },
            retry: BROKER_RETRY,
          },
        },
      },
    },
  };
}
