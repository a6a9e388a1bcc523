/** Tools and queries that several suites use. */
import { gqlOk } from "./graphql.js";
import { waitUntil } from "./wait.js";

export const REGISTER_TOOL = `mutation($input: RegisterToolInput!) { registerTool(input: $input) { id name version } }`;
export const SUBMIT = `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id state tasks { id key runs { id node { id } state argv } } } }`;

export const WORKFLOW = `query($id: ID!) {
  workflow(id: $id) { id state tasks { id key state runs {
    id attempt state failureReason exitCode message argv result logLineCount node { id }
    usage { wallMs cpuUserMs cpuSystemMs peakRssBytes logBytes outputBytes }
  } } }
}`;

/** A tool running `node -e <script> -- args…` so tests need nothing but Node on the PATH. */
export async function registerNodeScriptTool(url: string, name: string, script: string, extra: Record<string, unknown> = {}): Promise<string> {
  await gqlOk(url, REGISTER_TOOL, {
    input: {
      name,
      version: "1.0.0",
      executable: process.execPath,
      args: [
        { id: "script", type: "STRING", position: 0, prefix: "-e", default: script },
        { id: "a", type: "STRING", position: 1, default: "--" },
        { id: "value", type: "STRING", position: 2 },
        { id: "count", type: "INT", position: 3 },
      ],
      ...extra,
    },
  });
  return `${name}@1.0.0`;
}

/** A tool running `/bin/sh -c <script> <args…>` (`$0`, `$1`, … in the script), version 1. */
export async function registerShellTool(url: string, name: string, script: string, args: Record<string, unknown>[]): Promise<string> {
  await gqlOk(url, REGISTER_TOOL, {
    input: {
      name,
      version: "1",
      executable: "/bin/sh",
      args: [{ id: "c", type: "STRING", position: 0, default: "-c" }, { id: "script", type: "STRING", position: 1, default: script }, ...args],
    },
  });
  return `${name}@1`;
}

export interface RunView {
  id: string;
  attempt: number;
  state: string;
  failureReason: string | null;
  exitCode: number | null;
  message: string | null;
  argv: string[];
  result: unknown;
  logLineCount: number;
  node: { id: string };
  usage: { wallMs: number | null; cpuUserMs: number | null; cpuSystemMs: number | null; peakRssBytes: number | null; logBytes: number | null; outputBytes: number | null };
}

export interface WorkflowView {
  id: string;
  state: string;
  tasks: { id: string; key: string; state: string; runs: RunView[] }[];
}

export async function getWorkflow(url: string, id: string): Promise<WorkflowView> {
  return (await gqlOk<{ workflow: WorkflowView }>(url, WORKFLOW, { id })).workflow;
}

export const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"];

/** The workflow once it reached a terminal state (within `timeoutMs`). */
export async function finishedWorkflow(url: string, id: string, timeoutMs = 30_000): Promise<WorkflowView> {
  return waitUntil(async () => {
    const w = await getWorkflow(url, id);
    return TERMINAL.includes(w.state) ? w : undefined;
  }, timeoutMs, "the workflow to finish");
}

/**
 * Registers `mark@1`, a tool each execution of which appends one line to the file its `file`
 * parameter names (`key` is its label): lines in the file = executions, for exactly-once checks.
 */
export async function registerMarkTool(url: string): Promise<void> {
  await gqlOk(url, REGISTER_TOOL, {
    input: {
      name: "mark",
      version: "1",
      executable: "/bin/sh",
      args: [
        { id: "c", type: "STRING", position: 0, default: "-c" },
        { id: "script", type: "STRING", position: 1, default: 'echo "ran $0" >> "$1"; echo "marked $0"' },
        { id: "key", type: "STRING", position: 2, required: true },
        { id: "file", type: "STRING", position: 3, required: true },
      ],
    },
  });
}
