/** The kernel: run states, the change set, ids and the error catalogue. It imports no domain. */
export { type AfterCommit, ChangeSet, type LogChange, type NodeSnapshot, type RunSnapshot, type TaskChange, type WorkflowChange } from "./change-set.js";
export { AppError, BadInputError, ConflictError, ForbiddenError, NotFoundError, UnauthenticatedError, UnavailableError, type ErrorCode } from "./errors.js";
export { checkSubject, checkUuid, MAX_SUBJECT_CHARS } from "./ids.js";
export { FailureReason, isTerminalState, LogStream, RunState, TERMINAL } from "./run-state.js";
export { GlobalRole, hasProjectRole, isAdmin, maskedEnv, operatesNode, ProjectRole, readableProjectIds, type Viewer } from "./viewer.js";
export { QueryTooComplexError, RateLimitedError } from "./errors.js";
export { checkText, MAX_NAME_CHARS, MAX_VALUE_CHARS } from "./input-limits.js";
export { describeAmount, mergeResources, RESOURCE_KINDS, ResourceAmounts, ResourcesInput, validateResources, type ResourceAmountsData, type ResourcesInputData, type ResourceKind, type ResourceRequest } from "./resources.js";
