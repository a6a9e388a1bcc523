/**
 * A lightweight simulated node agent for the scale bench: one AMQP connection as the node's own
 * broker user, its runs queue consumed with a prefetch of its capacity, each dispatch parsed and its
 * signature verified with the wire contract as `fem-agent` does, then answered ACCEPTED, RUNNING and
 * SUCCEEDED (a no-op run) with confirms before the ack, and a heartbeat at the agent's default interval.
 * No process is started and nothing is written to disk: it measures the orchestrator and the broker.
 */
import { randomUUID, type KeyObject } from "node:crypto";
import amqp, { type ChannelModel, type ConfirmChannel } from "amqplib";
import {
  nodeBrokerUser,
  routingKeyOfNodeEvent,
  nodeMessageSchema,
  nodeQueueNames,
  parseMessage,
  verifyNodeMessage,
  EXCHANGES,
  WIRE_VERSION,
  type AgentEvent,
} from "../src/messaging/contracts.js";
import { withTimeout } from "../src/shared/index.js";

export interface SimAgentOptions {
  /** The broker URL of the vhost, without a user. */
  amqpUrl: string;
  vhost: string;
  nodeId: string;
  credential: string;
  capacity: number;
  /** @default 5_000, fem-agent's default */
  heartbeatIntervalMs?: number;
  orchestratorKey: KeyObject;
}

export interface SimAgent {
  /** Runs answered SUCCEEDED; dispatches refused (bad signature or shape). */
  counts(): { succeeded: number; refused: number };
  stop(): Promise<void>;
}

const HEALTH = { cpus: 2, loadAvg1: 0, memoryTotalBytes: 8 * 2 ** 30, memoryFreeBytes: 4 * 2 ** 30, diskFreeBytes: null, gpus: 0, agentVersion: "sim-1" };
const CONNECT_TIMEOUT_MS = 60_000;
const MAX_DISPATCH_AGE_MS = 3_600_000;

function publish(channel: ConfirmChannel, user: string, event: AgentEvent): Promise<void> {
  const body = Buffer.from(JSON.stringify(event));
  const routingKey = routingKeyOfNodeEvent(event);
  return new Promise((resolve, reject) =>
    channel.publish(EXCHANGES.nodeEvents, routingKey, body, { persistent: true, userId: user, messageId: randomUUID(), contentType: "application/json" }, (err) => (err ? reject(err) : resolve())),
  );
}

export async function startSimAgent(options: SimAgentOptions): Promise<SimAgent> {
  const user = nodeBrokerUser(options.vhost, options.nodeId);
  const url = new URL(options.amqpUrl);
  url.username = encodeURIComponent(user);
  url.password = encodeURIComponent(options.credential);
  const connection: ChannelModel = await withTimeout(amqp.connect(url.toString(), { noDelay: true }), CONNECT_TIMEOUT_MS, `node ${options.nodeId} to connect`);
  connection.on("error", () => undefined);
  const channel = await connection.createConfirmChannel();
  channel.on("error", () => undefined);
  await channel.prefetch(options.capacity);
  const active = new Map<string, { runId: string; attempt: number }>();
  let succeeded = 0;
  let refused = 0;
  let stopped = false;

  const at = () => new Date().toISOString();
  const base = { v: WIRE_VERSION, nodeId: options.nodeId } as const;

  await channel.consume(nodeQueueNames(options.nodeId).runs, (message) => {
    if (!message) return;
    void (async () => {
      const parsed = parseMessage(nodeMessageSchema, JSON.parse(message.content.toString()) as unknown);
      const ok = parsed.ok && parsed.value.nodeId === options.nodeId && verifyNodeMessage(parsed.value, { publicKeys: [options.orchestratorKey], maxAgeMs: MAX_DISPATCH_AGE_MS }).ok;
      if (!parsed.ok || !ok || parsed.value.type !== "run.dispatch") {
        refused += 1;
        channel.nack(message, false, false);
        return;
      }
      const { runId, attempt } = parsed.value;
      active.set(runId, { runId, attempt });
      const ref = { ...base, runId, attempt };
      await publish(channel, user, { ...ref, type: "run.state", state: "ACCEPTED", at: at() });
      channel.ack(message);
      await publish(channel, user, { ...ref, type: "run.state", state: "RUNNING", at: at() });
      const usage = { wallMs: 0, cpuUserMs: 0, cpuSystemMs: 0, peakRssBytes: 0, logBytes: 0, outputBytes: 0 };
      await publish(channel, user, { ...ref, type: "run.state", state: "SUCCEEDED", at: at(), exitCode: 0, usage });
      active.delete(runId);
      succeeded += 1;
    })().catch(() => undefined);
  });

  const beat = () =>
    publish(channel, user, { ...base, type: "node.heartbeat", at: at(), capacity: options.capacity, launchers: ["process"], health: HEALTH, activeRuns: [...active.values()], waitingRuns: [], unreportedRuns: [] }).catch(
      () => undefined,
    );
  void beat();
  const intervalMs = options.heartbeatIntervalMs ?? 5_000;
  // Spread the beats of many nodes over the interval instead of sending them in one burst.
  let timer: NodeJS.Timeout | null = setTimeout(function next() {
    if (stopped) return;
    void beat();
    timer = setTimeout(next, intervalMs);
  }, Math.random() * intervalMs);

  return {
    counts: () => ({ succeeded, refused }),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await withTimeout(connection.close(), 10_000, "closing a node's connection").catch(() => undefined);
    },
  };
}
