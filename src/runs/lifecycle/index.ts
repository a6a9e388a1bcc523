/**
 * The run lifecycle: the only code that changes a run's state, attempt or node. Each operation is
 * checked against one table of allowed transitions (table.ts) and brings its follow-ups along:
 * messages to nodes, retries, task and workflow state, and the ChangeSet to announce after commit.
 */
export { cancelRuns } from "./cancel.js";
export { createRuns, dispatchRuns, type NewRun } from "./create.js";
export { adoptReportedRuns, loseRunsOfNode, loseRunsOfSilentNodes, type ReportedActiveRun } from "./lost-runs.js";
export { settleInputWaiters } from "./input-waiters.js";
export { deriveTaskState, deriveWorkflowState, refreshTasks } from "./progress.js";
export { applyReportedStates, bareTerminalReport, type TransitionOptions } from "./reports.js";
export { rerunTasks } from "./rerun.js";
export { enqueueInputRefusal, enqueueRelease } from "./node-messages.js";
export { inputFilesOfRuns, type RunInputFileState } from "./input-files.js";
export {
  countUnreportedRuns,
  findUnheldDispatches,
  loseUnreportedRuns,
  settleUnheldDispatches,
  type UnheldDispatch,
  type UnreportedRunOptions,
} from "./unreported-runs.js";
export { isAllowed, TRANSITIONS, type RunOperation, type Transition } from "./table.js";
