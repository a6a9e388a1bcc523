/**
 * A workflow kept current by its `workflowEvents`, from a snapshot the caller got by query. Events
 * are applied once per frame, in batches: a burst (a cancel of 1,000 tasks is 2,001 events) costs
 * one render, so the page keeps reading the socket and the server does not cut it off as a slow
 * subscriber. If the server cuts it off anyway, the stream restarts and the caller refetches.
 */
import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { WorkflowEventsSubscription } from "../api/operations";
import { useStream } from "../api/use-stream";
import { INITIAL_LIVE_WORKFLOW, liveWorkflowReducer, type WorkflowEvent, type WorkflowView } from "./workflow-model";

/** Wait before resubscribing after the stream ended with an error. @default 1_000 // 1 second */
const RESUBSCRIBE_AFTER_MS = 1_000;

export function useLiveWorkflow(id: string, snapshot: WorkflowView | null, refetch?: () => void): { workflow: WorkflowView | null; error: string | null } {
  const [live, dispatch] = useReducer(liveWorkflowReducer, INITIAL_LIVE_WORKFLOW);
  const [generation, setGeneration] = useState(0);
  const queued = useRef<WorkflowEvent[]>([]);
  const frame = useRef<number | null>(null);

  const flush = useCallback(() => {
    frame.current = null;
    const events = queued.current;
    queued.current = [];
    if (events.length > 0) dispatch({ type: "events", events });
  }, []);
  useEffect(() => () => {
    if (frame.current !== null) cancelAnimationFrame(frame.current);
  }, []);

  const error = useStream(
    WorkflowEventsSubscription,
    () => ({ workflowId: id }),
    (data) => {
      queued.current.push(data.workflowEvents);
      frame.current ??= requestAnimationFrame(flush);
    },
    [id, generation],
  );

  useEffect(() => {
    if (!error) return;
    const timer = setTimeout(() => {
      dispatch({ type: "resync" });
      setGeneration((g) => g + 1);
      refetch?.();
    }, RESUBSCRIBE_AFTER_MS);
    return () => clearTimeout(timer);
  }, [error, refetch]);

  useEffect(() => {
    if (snapshot) dispatch({ type: "snapshot", workflow: snapshot });
  }, [snapshot]);
  return { workflow: live.workflow, error };
}
