/** An orchestrator as a separate process (`node dist/src/main.js`), for tests that kill or signal it. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { TEST_ADMIN_TOKEN } from "./graphql.js";
import { waitUntil, withTimeout } from "./wait.js";

const MAIN = fileURLToPath(new URL("../../src/main.js", import.meta.url));

export interface OrchestratorProcess {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  output(): string;
  /** SIGTERM; resolves with the exit code (bounded). */
  terminate(timeoutMs?: number): Promise<number | null>;
  kill9(): Promise<void>;
}

/** What `npm start` and the image give node (package.json, Dockerfile). */
const ORCHESTRATOR_NODE_ARGS = ["--max-semi-space-size=32"];

/**
 * `startTimeoutMs`: how long it may take to listen (migrations, broker topology). @default 30_000
 * `nodeArgs`: options for node itself (e.g. `--cpu-prof`, which NODE_OPTIONS refuses).
 */
export async function spawnOrchestrator(env: Record<string, string>, startTimeoutMs = 30_000, nodeArgs: string[] = []): Promise<OrchestratorProcess> {
  const child = spawn(process.execPath, [...ORCHESTRATOR_NODE_ARGS, ...nodeArgs, MAIN], {
    env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_LEVEL: process.env.TEST_ORCHESTRATOR_LOG_LEVEL ?? "warn", FEM_RELAY_POLL_MS: "100", FEM_HEARTBEAT_INTERVAL_MS: "500", FEM_BOOTSTRAP_ADMIN_TOKEN: TEST_ADMIN_TOKEN, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await waitUntil(
    () => {
      if (child.exitCode !== null) throw new Error(`orchestrator exited: ${output}`);
      return /listening on (\S+)/.exec(output)?.[1];
    },
    startTimeoutMs,
    "the orchestrator to listen",
  ).catch((err: unknown) => {
    child.kill("SIGKILL");
    throw err;
  });
  return {
    child,
    url,
    wsUrl: url.replace(/^http/, "ws"),
    output: () => output,
    async terminate(timeoutMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      return withTimeout(exited, timeoutMs, "the orchestrator to exit after SIGTERM");
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await withTimeout(exited, 10_000, "the orchestrator to die");
    },
  };
}
