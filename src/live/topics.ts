/** Names of in-process topics that subscriptions listen on. */
export const topics = {
  run: (runId: string) => `run:${runId}`,
  workflow: (workflowId: string) => `workflow:${workflowId}`,
  runLogs: (runId: string) => `logs:${runId}`,
  taskLogs: (taskId: string) => `taskLogs:${taskId}`,
  /** A run's output files changed release state; the payload is a RunOutputsPayload. */
  runOutputs: (runId: string) => `outputs:${runId}`,
  node: (nodeId: string) => `node:${nodeId}`,
  allNodes: "node:*",
  /** Runs that reached an end state, one FinishedRunsPayload per committed change. */
  finishedRuns: "runs:finished",
  /** Every newly submitted workflow, as a SubmittedWorkflowPayload. */
  submittedWorkflows: "workflows:submitted",
} as const;
