/**
 * `npm run bench:queues -- 200`: what each node's queues cost the broker as quorum vs classic queues.
 * In a throwaway vhost it declares N nodes' pairs of queues (runs + control, bound to fem.dispatch as
 * the orchestrator binds them), one type at a time, and reports the time to declare, the broker's
 * memory by category (management API), and the time to delete them one queue at a time with a
 * bounded wait each (never a vhost deletion with the queues in it: that wedged RabbitMQ 3.10).
 * The broker is shared: figures are deltas of the broker's own categories, noisy under other load.
 */
import amqp from "amqplib";
import { dispatchRoutingKey, EXCHANGES, EXCHANGE_TYPES, nodeQueueNames } from "../src/messaging/contracts.js";
import { withTimeout } from "../src/shared/index.js";
import { createTestVhost, management, MANAGEMENT_URL } from "../test/support/broker.js";

const NODES = Number(process.argv[2] ?? 200);
const TYPES = (process.argv[3] ?? "classic,quorum").split(",") as ("classic" | "quorum")[];
const DELETE_TIMEOUT_MS = 30_000;

interface Memory {
  rss: number;
  queueProcs: number;
  quorumProcs: number;
  quorumEts: number;
  otherEts: number;
  binary: number;
}

/** The memory breakdown is slow to compute on a busy broker: a longer bound than `management`'s, and a second try. */
async function memoryBreakdown(nodeName: string): Promise<Record<string, unknown>> {
  const base = new URL(MANAGEMENT_URL);
  const authorization = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString("base64")}`;
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch(`${base.origin}/api/nodes/${encodeURIComponent(nodeName)}/memory`, { headers: { authorization }, signal: AbortSignal.timeout(60_000) });
      return ((await response.json()) as { memory: Record<string, unknown> }).memory;
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
}

async function brokerMemory(): Promise<Memory> {
  const [node] = (await management("GET", "/nodes?columns=name")) as { name: string }[];
  const m = await memoryBreakdown(node.name);
  const n = (k: string) => Number(m[k] ?? 0);
  return { rss: (m.total as { rss: number }).rss, queueProcs: n("queue_procs"), quorumProcs: n("quorum_queue_procs"), quorumEts: n("quorum_ets"), otherEts: n("other_ets"), binary: n("binary") };
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const kib = (bytes: number) => (bytes / 1024).toFixed(0);

async function measure(url: string, type: "classic" | "quorum"): Promise<void> {
  const connection = await amqp.connect(url, { noDelay: true });
  const channel = await connection.createChannel();
  await channel.assertExchange(EXCHANGES.dispatch, EXCHANGE_TYPES[EXCHANGES.dispatch], { durable: true });
  const args = type === "quorum" ? { "x-queue-type": "quorum", "x-delivery-limit": 5 } : { "x-queue-type": "classic" };
  const before = await brokerMemory();
  const started = performance.now();
  const ids = Array.from({ length: NODES }, (_, i) => `bench-q-${i}`);
  try {
    for (const id of ids) {
      const names = nodeQueueNames(id);
      await channel.assertQueue(names.runs, { durable: true, arguments: args });
      await channel.assertQueue(names.control, { durable: true, arguments: args });
      await channel.bindQueue(names.runs, EXCHANGES.dispatch, dispatchRoutingKey(id, "run"));
      await channel.bindQueue(names.control, EXCHANGES.dispatch, dispatchRoutingKey(id, "control"));
    }
    const declareMs = performance.now() - started;
    await new Promise((r) => setTimeout(r, 5_000));
    const after = await brokerMemory();
    const queues = NODES * 2;
    const perQueue = (k: keyof Memory) => (after[k] - before[k]) / queues;
    console.log(
      `${type}: ${queues} queues declared in ${(declareMs / 1000).toFixed(1)} s (${Math.round(queues / (declareMs / 1000))}/s); ` +
        `broker RSS ${mib(before.rss)} → ${mib(after.rss)} MiB (${kib(perQueue("rss"))} KiB/queue); ` +
        `queue processes ${kib(perQueue("queueProcs") + perQueue("quorumProcs"))} KiB/queue, quorum ETS ${kib(perQueue("quorumEts"))} KiB/queue, other ETS ${kib(perQueue("otherEts"))} KiB/queue`,
    );
  } finally {
    const deleting = performance.now();
    let slowest = 0;
    for (const id of ids) {
      for (const name of Object.values(nodeQueueNames(id))) {
        const t = performance.now();
        await withTimeout(channel.deleteQueue(name), DELETE_TIMEOUT_MS, `deleting ${name}`);
        slowest = Math.max(slowest, performance.now() - t);
      }
    }
    console.log(`${type}: deleted one by one in ${((performance.now() - deleting) / 1000).toFixed(1)} s (slowest ${slowest.toFixed(0)} ms)`);
    await connection.close().catch(() => undefined);
  }
}

const vhost = await createTestVhost("fem_bench_queues");
try {
  for (const type of TYPES) await measure(vhost.url, type);
} finally {
  await vhost.drop();
}
