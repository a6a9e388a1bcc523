/** From the API's workflow shape to the page's (see workflow-model.ts). */
import type { WorkflowFieldsFragment } from "../gql/graphql";
import type { WorkflowView } from "./workflow-model";

export function toWorkflowView(workflow: WorkflowFieldsFragment): WorkflowView {
  return {
    id: workflow.id,
    name: workflow.name ?? null,
    state: workflow.state,
    submittedAt: workflow.submittedAt,
    submittedBy: workflow.submittedBy ?? null,
    projectId: workflow.projectId ?? null,
    tasks: workflow.tasks.map((task) => ({
      id: task.id,
      key: task.key,
      state: task.state,
      dependsOn: task.dependsOn.map((d) => d.id),
      runs: task.runs.map((run) => ({ id: run.id, taskId: task.id, nodeId: run.node.id, attempt: run.attempt, state: run.state })),
    })),
  };
}
