/**
 * A throwaway RabbitMQ node beside the machine's own (rabbit@localhost), for suites that need a
 * broker of their own: its own node name, ports on 127.0.0.1 (AMQP, management, Erlang
 * distribution), configuration, enabled-plugins file (management only), data and logs, all in a
 * temp directory removed by `dispose()`. It never touches the machine's node. Like that node it runs
 * as the `rabbitmq` user (Debian's rabbitmq-server and rabbitmqctl switch to it when run as root), so
 * both use that user's Erlang cookie (/var/lib/rabbitmq/.erlang.cookie): every node started here
 * can be clustered with the others, and `rabbitmqctl -n <node>` reaches each.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { sleep } from "./wait.js";

const run = promisify(execFile);

export interface RabbitNodeOptions {
  /** Start of the node name, `<prefix>-<random>@localhost`. */
  namePrefix: string;
  /**
   * Lines of rabbitmq.conf for the listeners, given the node's directory (which files may be copied
   * into before `chown`). @default a plain AMQP listener on `amqpPort`
   */
  listeners?: (baseDir: string, amqpPort: number) => Promise<string[]>;
}

export interface RabbitNode {
  nodeName: string;
  /** Plain AMQP port on 127.0.0.1 (unused when `listeners` configured none). */
  amqpPort: number;
  /** Management API port on 127.0.0.1 (plain HTTP, guest/guest). */
  managementPort: number;
  /** Erlang distribution port (clustering, rabbitmqctl). */
  distPort: number;
  /** Runs `rabbitmqctl -q -n <node> …` within `timeoutMs`; resolves with its stdout. */
  ctl(timeoutMs: number, ...args: string[]): Promise<string>;
  /** Starts the node (again, with its data, after `stop`); resolves once it has booted. */
  start(timeoutMs?: number): Promise<void>;
  /** Stops the node (rabbitmqctl stop, then SIGKILL past 15 s), keeping its data; safe to call twice. */
  stop(): Promise<void>;
  /** Whether the node's process is running. */
  running(): boolean;
  /** The node's startup output and the end of its log, for failure messages. */
  output(): Promise<string>;
  /** Stops the node and removes its directory; safe to call twice. */
  dispose(): Promise<void>;
}

/** A port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` (answers within 1 s). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, timeout: 1_000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

/** Prepares the node's directory and ports; the node is not started (see `start`). */
export async function createRabbitNode(options: RabbitNodeOptions): Promise<RabbitNode> {
  // Its own directory, owned by the rabbitmq user the node runs as (a test's temp dir is root's, mode 0700).
  const baseDir = await mkdtemp(join(tmpdir(), `${options.namePrefix}-`));
  const nodeName = `${options.namePrefix}-${randomBytes(4).toString("hex")}@localhost`;
  const [amqpPort, distPort, managementPort] = [await freePort(), await freePort(), await freePort()];
  const listeners = options.listeners ? await options.listeners(baseDir, amqpPort) : [`listeners.tcp.default = 127.0.0.1:${amqpPort}`];
  await writeFile(
    join(baseDir, "rabbitmq.conf"),
    [
      ...listeners,
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
  await mkdir(join(baseDir, "log"), { recursive: true });
  await run("chown", ["-R", "rabbitmq:rabbitmq", baseDir]);

  const env = {
    ...process.env,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(amqpPort),
    // The distribution port is fixed (not epmd's pick) so it never collides with another node's.
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

  const ctl = async (timeoutMs: number, ...args: string[]) => (await run("rabbitmqctl", ["-q", "-n", nodeName, ...args], { timeout: timeoutMs })).stdout;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let startup = "";
  let stopping: Promise<void> | null = null;
  let disposed: Promise<void> | null = null;
  const alive = () => child !== null && child.exitCode === null && child.signalCode === null;

  async function killLeftover(): Promise<void> {
    const pid = Number((await readFile(env.RABBITMQ_PID_FILE, "utf8").catch(() => "")).trim());
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    child?.kill("SIGKILL");
  }

  const node: RabbitNode = {
    nodeName,
    amqpPort,
    managementPort,
    distPort,
    ctl,
    running: alive,
    async output() {
      const log = await readFile(join(baseDir, "log", `${nodeName}.log`), "utf8").catch(() => "");
      return `${startup}\n${log.split("\n").slice(-40).join("\n")}`;
    },
    async start(startTimeoutMs = 60_000) {
      if (alive()) return;
      await stopping;
      stopping = null;
      const started = spawn("rabbitmq-server", [], { env, cwd: baseDir, stdio: ["ignore", "pipe", "pipe"] });
      child = started;
      started.stdout!.on("data", (d: Buffer) => (startup += d.toString()));
      started.stderr!.on("data", (d: Buffer) => (startup += d.toString()));
      started.once("error", (err) => (startup += `\nspawn failed: ${err.message}`));
      exited = new Promise<void>((resolve) => started.once("exit", () => resolve()));
      const deadline = Date.now() + startTimeoutMs;
      // Each rabbitmqctl call boots an Erlang VM (about a second of CPU): wait for the management
      // port, which opens late in the boot, by cheap TCP probes before asking await_startup.
      while (!(await accepts(managementPort)) && alive() && Date.now() < deadline) await sleep(250);
      for (;;) {
        if (!alive()) throw new Error(`the RabbitMQ node ${nodeName} exited while starting:\n${await node.output()}`);
        const left = deadline - Date.now();
        try {
          await ctl(Math.max(left, 1_000), "await_startup", "--timeout", String(Math.max(1, Math.floor(left / 1_000))));
          return;
        } catch (err) {
          if (Date.now() > deadline) {
            throw new Error(`the RabbitMQ node ${nodeName} did not start within ${startTimeoutMs} ms (${(err as Error).message.split("\n")[0]}):\n${await node.output()}`);
          }
          // The Erlang node is not up yet: rabbitmqctl cannot reach it and returns at once.
          await sleep(1_000);
        }
      }
    },
    stop() {
      stopping ??= (async () => {
        if (!alive()) return;
        await ctl(30_000, "stop").catch(() => undefined);
        const gone = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
        if (!gone) {
          await killLeftover();
          await Promise.race([exited, sleep(5_000)]);
        }
      })();
      return stopping;
    },
    dispose() {
      disposed ??= (async () => {
        await node.stop();
        // A node killed half-way may have left its Erlang VM behind.
        if (alive()) await killLeftover();
        await rm(baseDir, { recursive: true, force: true });
      })();
      return disposed;
    },
  };
  return node;
}
