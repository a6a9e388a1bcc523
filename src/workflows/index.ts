/** The workflows domain: submitting, reading, cancelling and retrying workflows and tasks. */
export { RunTaskResolver, TaskResolver } from "./task.resolver.js";
export { Task, type TaskRecord } from "./task.entity.js";
export { WorkflowResolver } from "./workflow.resolver.js";
export { Workflow } from "./workflow.entity.js";
export { cancelTask, cancelWorkflow, getTask, getWorkflow, listWorkflows, tasksByIds, tasksByWorkflowIds } from "./workflow.service.js";
export { submitWorkflow, type SubmitResult, type SubmitWorkflowData } from "./submit.js";
export { retryTask } from "./retry-task.js";
