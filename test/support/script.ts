/** Node scripts (and other programs) run as a user runs them (`node file args…`), with their output collected and every wait bounded. */
import { spawn, type ChildProcess } from "node:child_process";
import { basename } from "node:path";
import { withTimeout } from "./wait.js";

export interface ScriptResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ScriptProcess {
  child: ChildProcess;
  /** Resolves once the script exited and its output closed; after `timeoutMs` it is killed and this rejects. */
  result(timeoutMs: number): Promise<ScriptResult>;
  /** SIGKILL, if it is still running; safe to call twice. */
  kill(): void;
}

/** Starts `node <file> <args>` with only PATH and `env` in its environment. */
export function startScript(file: string, args: string[], env: Record<string, string> = {}): ScriptProcess {
  return startProgram(process.execPath, [file, ...args], env, basename(file));
}

/** Starts `<command> <args>` with only PATH and `env` in its environment (`env.PATH` overrides PATH). */
export function startProgram(command: string, args: string[], env: Record<string, string> = {}, name = basename(command)): ScriptProcess {
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<ScriptResult>((resolve) => child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  return {
    child,
    result: (timeoutMs) =>
      withTimeout(closed, timeoutMs, `${name} to exit`).catch((err: unknown) => {
        kill();
        throw new Error(`${(err as Error).message}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
      }),
    kill,
  };
}

/** Runs `node <file> <args>` to its end (killed after `timeoutMs`). */
export function runScript(file: string, args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<ScriptResult> {
  return startScript(file, args, env).result(timeoutMs);
}

/** Runs `<command> <args>` to its end (killed after `timeoutMs`). */
export function runProgram(command: string, args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<ScriptResult> {
  return startProgram(command, args, env).result(timeoutMs);
}
