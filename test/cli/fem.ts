/** The `fem` CLI as a user runs it: a subprocess with its own config directory, its output collected, every wait bounded. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { withTimeout } from "../support/wait.js";

export const FEM_BIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface FemResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface FemProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Writes to its standard input and closes it. */
  input(text: string): void;
  result(timeoutMs: number): Promise<FemResult>;
  kill(): void;
}

/** Starts `node dist/src/cli/main.js <args>` with only PATH, HOME and `env` in its environment; stdin is a pipe. */
export function startFem(args: string[], env: Record<string, string>): FemProcess {
  const child = spawn(process.execPath, [FEM_BIN, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<FemResult>((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    input(text) {
      child.stdin!.end(text);
    },
    result: (timeoutMs) =>
      withTimeout(closed, timeoutMs, `fem ${args.join(" ")} to exit`).catch((err: unknown) => {
        kill();
        throw new Error(`${(err as Error).message}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
      }),
    kill,
  };
}

/** Runs `fem <args>` to its end with empty standard input (killed after `timeoutMs`). */
export function fem(args: string[], env: Record<string, string>, timeoutMs = 30_000, input = ""): Promise<FemResult> {
  const p = startFem(args, env);
  p.input(input);
  return p.result(timeoutMs);
}
