/** Real `fem-agent` processes for tests. */
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { splitUrlList } from "../../src/shared/index.js";
import { withoutUser } from "./broker.js";
import { waitUntil, withTimeout } from "./wait.js";

export const AGENT_BIN = fileURLToPath(new URL("../../src/agent/main.js", import.meta.url));

export interface AgentOptions {
  nodeId: string;
  /** The broker URL, or several comma-separated (a cluster); a user and password in them are dropped (the agent connects as its node's user). */
  amqpUrl: string;
  /** The node's credential, written to a file of mode 0600 for FEM_NODE_CREDENTIAL_FILE. */
  credential: string;
  sandboxDir: string;
  capacity: number;
  heartbeatIntervalMs: number;
  env?: Record<string, string>;
}

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill9(): Promise<void>;
}

export async function spawnAgent(options: AgentOptions): Promise<AgentProcess> {
  await mkdir(options.sandboxDir, { recursive: true });
  const credentialFile = join(options.sandboxDir, "..", `${options.nodeId}.credential`);
  await writeFile(credentialFile, options.credential, { mode: 0o600 });
  await chmod(credentialFile, 0o600);
  const child = spawn(process.execPath, [AGENT_BIN], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      AMQP_URL: splitUrlList(options.amqpUrl).map(withoutUser).join(","),
      FEM_NODE_CREDENTIAL_FILE: credentialFile,
      FEM_NODE_ID: options.nodeId,
      FEM_SANDBOX_DIR: options.sandboxDir,
      FEM_CAPACITY: String(options.capacity),
      FEM_HEARTBEAT_INTERVAL_MS: String(options.heartbeatIntervalMs),
      FEM_KILL_GRACE_MS: "1000",
      FEM_SHUTDOWN_GRACE_MS: "2000",
      // Agents of suites that pin no key (orchestrators in other processes) run unsigned dispatches.
      FEM_ALLOW_UNSIGNED: "true",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const agent: AgentProcess = {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await withTimeout(exited, 10_000, `agent ${options.nodeId} to exit`).catch(() => {
        child.kill("SIGKILL");
        return exited;
      });
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await withTimeout(exited, 10_000, `agent ${options.nodeId} to die`);
    },
  };
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const ended = () => child.exitCode !== null || child.signalCode !== null;
  // An agent that exits while starting fails the wait at once, with all it printed (why it stopped).
  await waitUntil(() => /ready/.test(output) || ended(), 20_000, `agent ${options.nodeId} to be ready`)
    .then(async () => {
      if (/ready/.test(output)) return;
      await withTimeout(closed, 5_000, `agent ${options.nodeId}'s output to end`).catch(() => undefined);
      throw new Error(`it exited (${child.exitCode ?? child.signalCode})`);
    })
    .catch(async (err: unknown) => {
      await agent.stop();
      throw new Error(`agent ${options.nodeId} did not start: ${(err as Error).message}\n${output}`);
    });
  return agent;
}
