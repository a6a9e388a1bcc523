/**
 * A second, throwaway RabbitMQ node with a TLS listener (mutual TLS: verify_peer and
 * fail_if_no_peer_cert), started for one suite and removed after it. It shares nothing with the
 * machine's node (rabbit@localhost): its own node name, ports, data, logs, configuration and
 * enabled-plugins file (management only, on its own port), all in a temp directory. Like the
 * machine's node it runs as the `rabbitmq` user (Debian's rabbitmq-server and rabbitmqctl switch
 * to it when run as root), so both use that user's Erlang cookie.
 */
import { spawn, execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { TestPki } from "./pki.js";
import { sleep } from "./wait.js";

const run = promisify(execFile);

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

/** A port free on 127.0.0.1 right now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function ctl(nodeName: string, timeoutMs: number, ...args: string[]): Promise<string> {
  const { stdout } = await run("rabbitmqctl", ["-q", "-n", nodeName, ...args], { timeout: timeoutMs });
  return stdout;
}

/** Starts the node, with the server certificate of `pki`, in a temp directory of its own (removed by `stop`); resolves once it has booted. */
export async function startTlsBroker(pki: TestPki, startTimeoutMs = 60_000): Promise<TlsBroker> {
  // Its own directory, owned by the rabbitmq user the node runs as (a test's temp dir is root's, mode 0700).
  const baseDir = await mkdtemp(join(tmpdir(), "fem-tls-broker-"));
  const nodeName = `fem-tls-${randomBytes(4).toString("hex")}@localhost`;
  const [nodePort, distPort, tlsPort, managementPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  await mkdir(join(baseDir, "tls"), { recursive: true });
  for (const [from, to] of [[pki.caFile, "ca.pem"], [pki.serverCertFile, "server.pem"], [pki.serverKeyFile, "server.key"]] as const) {
    await copyFile(from, join(baseDir, "tls", to));
  }
  const tls = (name: string) => join(baseDir, "tls", name);
  await writeFile(
    join(baseDir, "rabbitmq.conf"),
    [
      "listeners.tcp = none",
      `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
      `ssl_options.cacertfile = ${tls("ca.pem")}`,
      `ssl_options.certfile = ${tls("server.pem")}`,
      `ssl_options.keyfile = ${tls("server.key")}`,
      "ssl_options.verify = verify_peer",
      "ssl_options.fail_if_no_peer_cert = true",
      "ssl_handshake_timeout = 5000",
      `management.tcp.port = ${managementPort}`,
      "management.tcp.ip = 127.0.0.1",
      "log.console = false",
      "log.file.level = info",
      "",
    ].join("\n"),
  );
  await writeFile(join(baseDir, "enabled_plugins"), "[rabbitmq_management].\n");
  // An empty env file instead of /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node.
  await writeFile(join(baseDir, "rabbitmq-env.conf"), "");
  await run("chown", ["-R", "rabbitmq:rabbitmq", baseDir]);

  const env = {
    ...process.env,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(nodePort),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONF_ENV_FILE: join(baseDir, "rabbitmq-env.conf"),
    RABBITMQ_CONFIG_FILE: join(baseDir, "rabbitmq.conf"),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(baseDir, "advanced.config"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(baseDir, "enabled_plugins"),
    RABBITMQ_MNESIA_BASE: join(baseDir, "mnesia"),
    RABBITMQ_LOG_BASE: join(baseDir, "log"),
    RABBITMQ_PID_FILE: join(baseDir, "node.pid"),
    ERL_EPMD_ADDRESS: "127.0.0.1",
  };
  const child = spawn("rabbitmq-server", [], { env, cwd: baseDir, stdio: ["ignore", "pipe", "pipe"] });
  let startup = "";
  child.stdout!.on("data", (d: Buffer) => (startup += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (startup += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("error", (err) => (startup += `\nspawn failed: ${err.message}`));

  let stopped: Promise<void> | null = null;
  const broker: TlsBroker = {
    nodeName,
    tlsPort,
    managementPort,
    async output() {
      const log = await readFile(join(baseDir, "log", `${nodeName}.log`), "utf8").catch(() => "");
      return `${startup}\n${log.split("\n").slice(-40).join("\n")}`;
    },
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          await ctl(nodeName, 30_000, "stop").catch(() => undefined);
          const pid = Number((await readFile(env.RABBITMQ_PID_FILE, "utf8").catch(() => "")).trim());
          const gone = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
          if (!gone && Number.isInteger(pid) && pid > 0) {
            try {
              process.kill(pid, "SIGKILL");
            } catch {
              // already gone
            }
          }
          if (!gone) child.kill("SIGKILL");
        }
        await rm(baseDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const output = await broker.output();
      await broker.stop();
      throw new Error(`the TLS RabbitMQ node ${nodeName} exited while starting:\n${output}`);
    }
    const left = deadline - Date.now();
    try {
      await ctl(nodeName, Math.max(left, 1_000), "await_startup", "--timeout", String(Math.max(1, Math.floor(left / 1_000))));
      return broker;
    } catch (err) {
      if (Date.now() > deadline) {
        const output = await broker.output();
        await broker.stop();
        throw new Error(`the TLS RabbitMQ node ${nodeName} did not start within ${startTimeoutMs} ms (${(err as Error).message.split("\n")[0]}):\n${output}`);
      }
      // The Erlang node is not up yet: rabbitmqctl cannot reach it and returns at once.
      await sleep(500);
    }
  }
}
