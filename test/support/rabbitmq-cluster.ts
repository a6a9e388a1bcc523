/**
 * A throwaway RabbitMQ cluster on this machine: `size` nodes of `rabbitmq-node.ts` (own names,
 * ports and directories; the machine's rabbit@localhost is never touched), the others joined to
 * the first with `rabbitmqctl stop_app / join_cluster / start_app`, and one vhost for the suite.
 * Quorum queues declared after it formed get a member on every node.
 */
import { createRabbitNode, type RabbitNode } from "./rabbitmq-node.js";
import { waitUntil } from "./wait.js";

export interface RabbitCluster {
  nodes: RabbitNode[];
  vhost: string;
  /** One AMQP URL per node, as guest on the vhost, in node order. */
  amqpUrls: string[];
  /** One management API URL per node, with guest's credentials, in node order. */
  managementUrls: string[];
  /** The running nodes as the cluster sees them (`rabbitmqctl cluster_status`, asked of `via`). */
  runningNodes(via: RabbitNode): Promise<string[]>;
  /** Calls a node's management API as guest; the parsed answer. */
  management(node: RabbitNode, path: string): Promise<unknown>;
  /** Stops every node and removes their directories, even after a failure; safe to call twice. */
  dispose(): Promise<void>;
}

const CTL_TIMEOUT_MS = 60_000;

/** Starts `size` nodes at once, clusters them, and makes `vhost` with guest's permissions. */
export async function startRabbitCluster(size = 3, vhost = "fem_cluster", startTimeoutMs = 120_000): Promise<RabbitCluster> {
  const nodes: RabbitNode[] = [];
  const dispose = async () => {
    await Promise.all(nodes.map((n) => n.dispose().catch(() => undefined)));
  };
  try {
    for (let i = 1; i <= size; i++) nodes.push(await createRabbitNode({ namePrefix: `fem-c${i}` }));
    await Promise.all(nodes.map((n) => n.start(startTimeoutMs)));
    const [first, ...others] = nodes as [RabbitNode, ...RabbitNode[]];
    for (const node of others) {
      await node.ctl(CTL_TIMEOUT_MS, "stop_app");
      await node.ctl(CTL_TIMEOUT_MS, "join_cluster", first.nodeName);
      await node.ctl(CTL_TIMEOUT_MS, "start_app");
    }
    const cluster: RabbitCluster = {
      nodes,
      vhost,
      amqpUrls: nodes.map((n) => `amqp://guest:guest@127.0.0.1:${n.amqpPort}/${encodeURIComponent(vhost)}`),
      managementUrls: nodes.map((n) => `http://guest:guest@127.0.0.1:${n.managementPort}`),
      async runningNodes(via) {
        const status = JSON.parse(await via.ctl(CTL_TIMEOUT_MS, "cluster_status", "--formatter", "json")) as { running_nodes?: string[] };
        return [...(status.running_nodes ?? [])].sort();
      },
      async management(node, path) {
        const response = await fetch(`http://127.0.0.1:${node.managementPort}/api${path}`, {
          headers: { authorization: `Basic ${Buffer.from("guest:guest").toString("base64")}` },
          signal: AbortSignal.timeout(10_000),
        });
        const text = await response.text();
        if (!response.ok) throw new Error(`management API of ${node.nodeName} ${path}: ${response.status} ${text.slice(0, 200)}`);
        return JSON.parse(text) as unknown;
      },
      dispose,
    };
    const names = nodes.map((n) => n.nodeName).sort();
    await waitUntil(async () => JSON.stringify(await cluster.runningNodes(first)) === JSON.stringify(names), 30_000, `all ${size} nodes running in one cluster`);
    await first.ctl(CTL_TIMEOUT_MS, "add_vhost", vhost);
    await first.ctl(CTL_TIMEOUT_MS, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*");
    return cluster;
  } catch (err) {
    const outputs = await Promise.all(nodes.map(async (n) => `--- ${n.nodeName}\n${(await n.output()).slice(-3_000)}`));
    await dispose();
    throw new Error(`the RabbitMQ cluster did not form: ${(err as Error).message}\n${outputs.join("\n")}`, { cause: err });
  }
}
