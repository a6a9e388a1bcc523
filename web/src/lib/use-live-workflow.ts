/** A workflow kept current by its `workflowEvents`, from a snapshot the caller got by query. */
import { useEffect, useReducer } from "react";
import { WorkflowEventsSubscription } from "../api/operations";
import { useStream } from "../api/use-stream";
import { liveWorkflowReducer, type WorkflowView } from "./workflow-model";

export function useLiveWorkflow(id: string, snapshot: WorkflowView | null): { workflow: WorkflowView | null; error: string | null } {
  const [live, dispatch] = useReducer(liveWorkflowReducer, { workflow: null, early: [] });
  const error = useStream(WorkflowEventsSubscription, () => ({ workflowId: id }), (data) => dispatch({ type: "event", event: data.workflowEvents }), [id]);
  useEffect(() => {
    if (snapshot) dispatch({ type: "snapshot", workflow: snapshot });
  }, [snapshot]);
  return { workflow: live.workflow, error };
}
