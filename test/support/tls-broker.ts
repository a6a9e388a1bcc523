/**
 * A second, throwaway RabbitMQ node with a TLS listener only (mutual TLS: verify_peer and
 * fail_if_no_peer_cert), started for one suite and removed after it: a `rabbitmq-node.ts` node
 * whose listeners are replaced by one TLS listener with `pki`'s server certificate.
 */
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { TestPki } from "./pki.js";
import { createRabbitNode, freePort } from "./rabbitmq-node.js";

export interface TlsBroker {
  nodeName: string;
  /** TLS (amqps) port on 127.0.0.1; the node has no plain AMQP listener. */
  tlsPort: number;
  /** Management API port on 127.0.0.1 (plain HTTP). */
  managementPort: number;
  /** The node's log and startup output, for failure messages. */
  output(): Promise<string>;
  /** Stops the node (rabbitmqctl stop, then SIGKILL) and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** Starts the node, with the server certificate of `pki`, in a temp directory of its own (removed by `stop`); resolves once it has booted. */
export async function startTlsBroker(pki: TestPki, startTimeoutMs = 60_000): Promise<TlsBroker> {
  const tlsPort = await freePort();
  const node = await createRabbitNode({
    namePrefix: "fem-tls",
    async listeners(baseDir) {
      await mkdir(join(baseDir, "tls"), { recursive: true });
      for (const [from, to] of [[pki.caFile, "ca.pem"], [pki.serverCertFile, "server.pem"], [pki.serverKeyFile, "server.key"]] as const) {
        await copyFile(from, join(baseDir, "tls", to));
      }
      const tls = (name: string) => join(baseDir, "tls", name);
      return [
        "listeners.tcp = none",
        `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
        `ssl_options.cacertfile = ${tls("ca.pem")}`,
        `ssl_options.certfile = ${tls("server.pem")}`,
        `ssl_options.keyfile = ${tls("server.key")}`,
        "ssl_options.verify = verify_peer",
        "ssl_options.fail_if_no_peer_cert = true",
        "ssl_handshake_timeout = 5000",
      ];
    },
  });
  try {
    await node.start(startTimeoutMs);
  } catch (err) {
    await node.dispose();
    throw err;
  }
  return { nodeName: node.nodeName, tlsPort, managementPort: node.managementPort, output: () => node.output(), stop: () => node.dispose() };
}
