/** Running one tool on one node and checking how the node answered, for the suites about node trust. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as assert from "uvu/assert";
import type { TestEnv } from "./env.js";
import { finishedWorkflow, SUBMIT, type RunView } from "./fixtures.js";
import { addToTestProject, gqlOk } from "./graphql.js";

/** Registers `nodeId` and adds it to the suite's project. */
export async function registerNode(env: TestEnv, nodeId: string, capacity = 4): Promise<void> {
  await gqlOk(env.orchestrator.url, `mutation { registerNode(input: { id: "${nodeId}", capacity: ${capacity} }) { node { id } } }`);
  await addToTestProject(env.orchestrator.url, [nodeId]);
}

/** Submits one task of `tool` on `nodeId` and returns its run once the workflow finished. */
export async function runOn(env: TestEnv, nodeId: string, tool: string): Promise<RunView> {
  const data = await gqlOk(env.orchestrator.url, SUBMIT, { input: { tasks: [{ key: "t", tool, nodes: [nodeId] }] } });
  return (await finishedWorkflow(env.orchestrator.url, data.submitWorkflow.id)).tasks[0].runs[0];
}

/** The node refused the run with `message` and made no sandbox for it, so nothing ran. */
export function assertRefused(env: TestEnv, run: RunView, nodeId: string, message: RegExp): void {
  assert.is(run.state, "FAILED");
  assert.is(run.failureReason, "REJECTED_BY_NODE");
  assert.match(run.message ?? "", message);
  assert.not.ok(existsSync(join(env.sandboxRoot, nodeId, "runs", `${run.id}-1`)), "no sandbox was made, so nothing ran");
}
