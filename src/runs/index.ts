/** The runs domain: the run lifecycle (the only writer of run state), the scheduler and the Run type. */
export * from "./lifecycle/index.js";
export { Run } from "./run.entity.js";
export { rowToRun, type RunRecord } from "./run.mapper.js";
export { RunResolver } from "./run.resolver.js";
export { forgedRunClaims, getRun, runsByTaskIds, unfinishedRunsOfNode, type RunClaim } from "./run.service.js";
export { createScheduler, dispatchReadyRuns, type SchedulerOptions } from "./scheduler.js";
export { Usage } from "./run.types.js";
export { nodeResources, type NodeResources } from "./placement.js";
