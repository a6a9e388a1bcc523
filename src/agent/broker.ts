/**
 * The agent's whole RabbitMQ topology and its connection, wrapped so that the rest of the agent
 * sees three things only: confirmed publishing, deliveries with ack/dead-letter, and `stop()`.
 */
import rascal from "rascal";
import { EXCHANGES, QUEUES, nodeBrokerUser, nodeQueueNames, runChunkWire, type AgentEvent, type RunChunkEvent } from "../messaging/contracts.js";
import { amqpSocketOptions, amqpUrlsOf, BROKER_RETRY, errorCode, maskUrl, TimeoutError, toError, vhostOf, withTimeout, type AmqpTls } from "../shared/index.js";
import type { AgentLogger } from "./log.js";

export type SubscriptionName = "runs" | "control" | "inputs";

/** One delivered node message (a dispatch or a cancel); exactly one of its settle methods should be called. */
export interface NodeMessageDelivery {
  /** The raw body, not parsed yet: intake checks its size first. */
  body: Buffer;
  redelivered: boolean;
  ack(): Promise<void>;
  /** Rejects without requeue, so the queue dead-letters it. */
  deadLetter(reason: string): Promise<void>;
  /** Returns the message to its queue for another consumer or a later start. */
  requeue(): Promise<void>;
}

export interface AgentBroker {
  /** Resolves once the broker confirmed the event; rejects on error, timeout or lost connection. */
  publish(event: AgentEvent, target: { routingKey: string; messageId: string }): Promise<void>;
  /** Starts consuming; resolves when the consumer is registered (bounded by the connect timeout). */
  consume(name: SubscriptionName, onDelivery: (delivery: NodeMessageDelivery) => void): Promise<void>;
  /** Stops consuming from one subscription; never throws. */
  cancel(name: SubscriptionName): Promise<void>;
  /** Whether the connection is up, and how many times it came back after a loss. */
  connection(): { connected: boolean; reconnects: number };
  stop(): Promise<void>;
}

export interface AgentBrokerSettings {
  /** The broker URL without a user. */
  amqpUrl: string;
  /** Other nodes of the cluster, without a user, tried in order after `amqpUrl`. @default [] */
  amqpFailoverUrls?: string[];
  /** The CA, client certificate and key of an `amqps://` URL (read from FEM_AMQP_*_FILE). */
  tls: AmqpTls;
  nodeId: string;
  /** The node's credential: the password of its own broker user. */
  credential: string;
  capacity: number;
  /** Bound on the first connection and on registering a consumer. @default 10_000 */
  connectTimeoutMs?: number;
}

/** Thrown when the first connection or the topology declaration fails; `code` is the cause's code. */
export class BrokerConnectError extends Error {
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "BrokerConnectError";
  }
}

const PUBLICATION = "events";
const PUBLISH_TIMEOUT_MS = 10_000;
const SUBSCRIPTION_CLOSE_TIMEOUT_MS = 5_000;
const SHUTDOWN_TIMEOUT_MS = 5_000;

/** The node's own broker user on the vhost of `amqpUrl`. */
export function brokerUserOf(settings: Pick<AgentBrokerSettings, "amqpUrl" | "nodeId">): string {
  return nodeBrokerUser(vhostOf(settings.amqpUrl), settings.nodeId);
}

/** `amqpUrl` (or `otherUrl`, a failover node's) with the node's broker user and credential in it. */
export function brokerUrlOf(settings: Pick<AgentBrokerSettings, "amqpUrl" | "nodeId" | "credential">, otherUrl?: string): string {
  const url = new URL(otherUrl ?? settings.amqpUrl);
  url.username = encodeURIComponent(brokerUserOf(settings));
  url.password = encodeURIComponent(settings.credential);
  return url.toString();
}

/**
 * The rascal definition of the agent's vhost (exported so tests can inspect it). The node's user
 * may configure nothing: the orchestrator declares the exchanges, the node's queues and their
 * bindings, and the agent only checks (passively) that they exist. Every event carries the
 * node's user as `user_id`, which RabbitMQ verifies.
 */
export function buildBrokerConfig(settings: AgentBrokerSettings): Record<string, unknown> {
  const queues = nodeQueueNames(settings.nodeId);
  const existing = { assert: false, check: true };
  const vhost = {
    // In the order given: the first URL is preferred, the others are where rascal goes next.
    connectionStrategy: "fixed",
    connections: amqpUrlsOf(settings).map((url) => ({
      url: brokerUrlOf(settings, url),
      socketOptions: { noDelay: true, timeout: settings.connectTimeoutMs ?? 10_000, ...amqpSocketOptions(url, settings.tls) },
    })),
    publicationChannelPools: { confirmPool: { max: 50 } },
    exchanges: { [EXCHANGES.nodeEvents]: existing },
    queues: { [queues.runs]: existing, [queues.control]: existing, [queues.inputs]: existing },
    publications: {
      [PUBLICATION]: { exchange: EXCHANGES.nodeEvents, confirm: true, timeout: PUBLISH_TIMEOUT_MS, options: { persistent: true, userId: brokerUserOf(settings) } },
    },
    subscriptions: {
      runs: subscription(queues.runs, settings.capacity),
      control: subscription(queues.control, 20),
      // Chunks of input files (~350 KB each): enough in flight to fill the fetch window.
      inputs: subscription(queues.inputs, 32),
    },
  };
  // rascal takes a connection's retry only from these defaults (it drops one given per connection).
  return { defaults: { vhosts: { connection: { retry: BROKER_RETRY } } }, vhosts: { [vhostOf(settings.amqpUrl)]: vhost } };
}

function subscription(queue: string, prefetch: number): Record<string, unknown> {
  return {
    queue,
    prefetch,
    closeTimeout: SUBSCRIPTION_CLOSE_TIMEOUT_MS,
    // Raw bytes: intake checks the size before it parses anything.
    contentType: "application/octet-stream",
    retry: BROKER_RETRY,
  };
}

/** Connects, declares the topology and returns the broker; throws `BrokerConnectError` within the timeout. */
export interface AgentBrokerDeps {
  log: AgentLogger;
  /**
   * Called once per disconnection when RabbitMQ refuses the node's user the vhost while
   * reconnecting: the orchestrator withdrew its permissions (the node is DISABLED).
   */
  onCutOff?: (reason: string) => void;
}

export async function connectAgentBroker(settings: AgentBrokerSettings, deps: AgentBrokerDeps): Promise<AgentBroker> {
  const { log } = deps;
  const connectTimeoutMs = settings.connectTimeoutMs ?? 10_000;
  const broker = await createRascalBroker(settings, connectTimeoutMs);
  let lostAt: number | null = null;
  let errorLoggedAt = 0;
  let cutOffAt: number | null = null;
  broker.on("error", (err: unknown) => {
    if (lostAt !== null && cutOffAt !== lostAt && connectErrorCode(toError(err)) === "NOT_ALLOWED") {
      cutOffAt = lostAt;
      deps.onCutOff?.(`RabbitMQ refuses ${brokerUserOf(settings)} the vhost: the node was disabled`);
    }
    // While disconnected, rascal reports every failed reconnection; one line per 30 s is enough.
    if (lostAt !== null && Date.now() - errorLoggedAt < 30_000) return;
    errorLoggedAt = Date.now();
    log.warn(`broker: ${toError(err).message}`);
  });
  // rascal names the node it reached (of several, with failover), password masked.
  let connectedTo = maskUrl(settings.amqpUrl);
  const failover = (settings.amqpFailoverUrls ?? []).length > 0 ? ", or another node of the cluster" : "";
  broker.on("disconnect", () => {
    if (lostAt !== null) return;
    lostAt = Date.now();
    log.warn(`lost the connection to RabbitMQ at ${connectedTo}; reconnecting${failover} (a DISABLED node or a rotated credential is refused until enabled or given the new credential)`);
  });
  let reconnects = 0;
  broker.on("vhost_initialised", (details: { connectionUrl?: string } | undefined) => {
    connectedTo = details?.connectionUrl ?? connectedTo;
    if (lostAt === null) return;
    reconnects += 1;
    log.info(`reconnected to RabbitMQ at ${connectedTo} after ${Date.now() - lostAt} ms`);
    lostAt = null;
  });
  broker.on("blocked", (reason: unknown) => log.warn(`RabbitMQ blocked the connection: ${String(reason)}`));

  const sessions = new Map<SubscriptionName, RascalSession>();
  let returnedWarnedAt = 0;
  let stopping: Promise<void> | null = null;

  function publishChunk(event: RunChunkEvent, target: { routingKey: string; messageId: string }) {
    const { body, headers } = runChunkWire(event);
    return broker.publish(PUBLICATION, body, { routingKey: target.routingKey, options: { messageId: target.messageId, contentType: "application/octet-stream", headers } });
  }

  async function publish(event: AgentEvent, target: { routingKey: string; messageId: string }): Promise<void> {
    // A chunk's bytes go as the body, as they are; its other fields in a header (see runChunkHeaderSchema).
    const session =
      event.type === "run.chunk"
        ? await publishChunk(event, target)
        : await broker.publish(PUBLICATION, event, { routingKey: target.routingKey, options: { messageId: target.messageId } });
    const confirmed = new Promise<void>((resolve, reject) => {
      session.on("success", () => resolve());
      session.on("error", (err: unknown) => reject(toError(err)));
      session.on("close", () => reject(new Error("channel closed before the broker confirmed")));
      session.on("paused", () => reject(new Error("not connected to RabbitMQ")));
      session.on("return", () => {
        if (Date.now() - returnedWarnedAt < 60_000) return;
        returnedWarnedAt = Date.now();
        log.warn(`RabbitMQ could not route ${target.routingKey} (is the orchestrator's ${QUEUES.nodeEvents} queue declared?)`);
      });
    });
    const confirmTimeoutMs = PUBLISH_TIMEOUT_MS + 5_000;
    await withTimeout(confirmed, confirmTimeoutMs, `no confirm within ${confirmTimeoutMs} ms`).catch((err: unknown) => {
      // Rascal holds a publish while disconnected; abort it so the outbox, which keeps order, retries.
      session.abort();
      throw err;
    });
  }

  async function consume(name: SubscriptionName, onDelivery: (delivery: NodeMessageDelivery) => void): Promise<void> {
    const session = await broker.subscribe(name);
    sessions.set(name, session);
    session.on("error", (err: unknown) => log.warn(`subscription ${name}: ${toError(err).message}`));
    session.on("cancelled", (err: unknown) => log.warn(`subscription ${name}: ${toError(err).message}; resubscribing`));
    session.on("invalid_content", (err: unknown, _message: unknown, ackOrNack: AckOrNack) => {
      log.warn(`subscription ${name}: dead-lettering a message that is not JSON (${toError(err).message})`);
      ackOrNack(toError(err), { strategy: "nack" }, () => undefined);
    });
    const registered = withTimeout(
      new Promise<void>((resolve) => session.once("subscribed", () => resolve())),
      connectTimeoutMs,
      `no "subscribed" within ${connectTimeoutMs} ms`,
    );
    session.on("message", (message: RascalMessage, _content: unknown, ackOrNack: AckOrNack) => {
      onDelivery(toDelivery(message, ackOrNack));
    });
    await registered;
  }

  async function cancel(name: SubscriptionName): Promise<void> {
    const session = sessions.get(name);
    if (!session) return;
    sessions.delete(name);
    // With unacknowledged messages and a closeTimeout, rascal rejects after closing the channel.
    const cancelTimeoutMs = SUBSCRIPTION_CLOSE_TIMEOUT_MS + 2_000;
    await withTimeout(session.cancel(), cancelTimeoutMs, `no answer within ${cancelTimeoutMs} ms`).catch((err: unknown) => log.warn(`cancelling ${name}: ${toError(err).message}`));
  }

  async function stop(): Promise<void> {
    stopping ??= (async () => {
      for (const name of [...sessions.keys()]) await cancel(name);
      await withTimeout(broker.shutdown(), SHUTDOWN_TIMEOUT_MS, `no answer within ${SHUTDOWN_TIMEOUT_MS} ms`).catch((err: unknown) => log.warn(`broker shutdown: ${toError(err).message}`));
    })();
    return stopping;
  }

  return { publish, consume, cancel, stop, connection: () => ({ connected: lostAt === null, reconnects }) };
}

async function createRascalBroker(settings: AgentBrokerSettings, connectTimeoutMs: number): Promise<RascalBroker> {
  const { BrokerAsPromised, withDefaultConfig } = rascal as unknown as RascalModule;
  const creating = BrokerAsPromised.create(withDefaultConfig(buildBrokerConfig(settings)));
  try {
    return await withTimeout(creating, connectTimeoutMs, `no answer within ${connectTimeoutMs} ms`);
  } catch (err) {
    // A failed or late creation still holds a broker (and rascal's keep-alive timer): shut it down.
    creating.then((late) => late.shutdown()).catch((failure: unknown) => brokerOf(failure)?.shutdown().catch(() => undefined));
    if (err instanceof TimeoutError) throw new BrokerConnectError(err.message, "ETIMEDOUT");
    const error = toError(err);
    throw new BrokerConnectError(error.message, connectErrorCode(error), { cause: error });
  }
}

function brokerOf(err: unknown): RascalBroker | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const key = (err as { broker?: unknown }).broker;
  return typeof key === "symbol" ? ((err as Record<symbol, RascalBroker | undefined>)[key] ?? undefined) : undefined;
}

/** The code `BrokerConnectError` carries: the system error's code, else one read from the AMQP error's text. */
function connectErrorCode(err: Error): string {
  const systemCode = errorCode(err);
  if (systemCode !== undefined) return systemCode;
  if (/ACCESS_REFUSED|403/.test(err.message)) return "ACCESS_REFUSED";
  // A missing vhost (or one the user may not use) closes the connection instead of opening it.
  if (/NOT_ALLOWED|vhost|Expected ConnectionOpenOk/i.test(err.message)) return "NOT_ALLOWED";
  if (/PRECONDITION_FAILED|406/.test(err.message)) return "PRECONDITION_FAILED";
  if (/NOT_FOUND|404/.test(err.message)) return "NOT_FOUND";
  const amqpCode = (err as { code?: unknown }).code;
  return typeof amqpCode === "number" ? String(amqpCode) : "UNKNOWN";
}

function toDelivery(message: RascalMessage, ackOrNack: AckOrNack): NodeMessageDelivery {
  const settle = (err: Error | undefined, recovery: Record<string, unknown> | undefined) =>
    new Promise<void>((resolve, reject) => {
      const done = (failure?: unknown) => (failure ? reject(toError(failure)) : resolve());
      if (err) ackOrNack(err, recovery, done);
      else ackOrNack(done);
    });
  return {
    body: message.content,
    redelivered: message.fields?.redelivered === true,
    ack: () => settle(undefined, undefined),
    deadLetter: (reason) => settle(new Error(reason), { strategy: "nack" }),
    requeue: () => settle(new Error("requeued"), { strategy: "nack", requeue: true }),
  };
}

// @types/rascal lags rascal 21; these are the few shapes the agent uses.
type AckOrNack = (...args: unknown[]) => void;
interface RascalMessage {
  content: Buffer;
  fields?: { redelivered?: boolean };
}
interface Emitter {
  on(event: string, listener: (...args: never[]) => void): unknown;
  once(event: string, listener: (...args: never[]) => void): unknown;
}
interface RascalSession extends Emitter {
  cancel(): Promise<void>;
}
interface RascalPublication extends Emitter {
  abort(): void;
}
interface RascalBroker extends Emitter {
  publish(name: string, content: unknown, overrides: Record<string, unknown>): Promise<RascalPublication>;
  subscribe(name: string): Promise<RascalSession>;
  shutdown(): Promise<void>;
}
interface RascalModule {
  BrokerAsPromised: { create(config: unknown): Promise<RascalBroker> };
  withDefaultConfig(config: unknown): unknown;
}
