/** A parsed `run.dispatch` of a tool, for unit tests of the agent's checks. */
import { nodeMessageSchema, runDispatchMessage, type RunDispatch } from "../../src/messaging/contracts.js";
import { toolDefinition, toolDigest, type ToolDefinitionSource } from "../../src/shared/index.js";

/** The dispatch of run 1 of `tool` (as `stats@1`) on node `site-a`, with its definition and digest. */
export function dispatchOf(tool: ToolDefinitionSource, fields: Pick<RunDispatch, "argv" | "env" | "timeoutSeconds" | "resultFile" | "outputs">): RunDispatch {
  return nodeMessageSchema.parse(
    runDispatchMessage({
      runId: "7d2d3f2d-41b0-4854-bd0a-e583cc21ccbd",
      attempt: 1,
      nodeId: "site-a",
      workflowId: "21a76c47-a847-4077-ab62-53428843dd55",
      taskId: "c7e0422b-0ebb-4b6e-8c89-c7835f49a70a",
      tool: { name: "stats", version: "1", digest: toolDigest(tool), definition: toolDefinition(tool) },
      launcher: "process",
      image: null,
      upstream: [],
      ...fields,
    }).payload,
  ) as RunDispatch;
}
