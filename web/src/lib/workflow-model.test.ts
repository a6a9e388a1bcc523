import { describe, expect, it } from "vitest";
import { applyEvent, applyEvents, INITIAL_LIVE_WORKFLOW, liveWorkflowReducer, taskProgress, workflowProgress, type WorkflowEvent, type WorkflowView } from "./workflow-model";

const snapshot = (): WorkflowView => ({
  id: "w1",
  name: "diamond",
  state: "RUNNING",
  submittedAt: "2026-12-01T00:00:00.000Z",
  submittedBy: "admin",
  tasks: [
    { id: "t1", key: "a", state: "RUNNING", dependsOn: [], runs: [{ id: "r1", taskId: "t1", nodeId: "n1", attempt: 1, state: "RUNNING" }, { id: "r2", taskId: "t1", nodeId: "n2", attempt: 1, state: "QUEUED" }] },
    { id: "t2", key: "b", state: "PENDING", dependsOn: ["t1"], runs: [{ id: "r3", taskId: "t2", nodeId: "n1", attempt: 1, state: "PENDING" }] },
  ],
});

describe("workflow model", () => {
  it("applies run, task and workflow events", () => {
    let w = snapshot();
    w = applyEvent(w, { kind: "RUN", state: "SUCCEEDED", taskId: "t1", runId: "r1" });
    w = applyEvent(w, { kind: "TASK", state: "FAILED", taskId: "t1" });
    w = applyEvent(w, { kind: "WORKFLOW", state: "FAILED" });
    expect(w.tasks[0].runs[0].state).toBe("SUCCEEDED");
    expect(w.tasks[0].state).toBe("FAILED");
    expect(w.state).toBe("FAILED");
  });

  it("adds a retry's new run from its event, and counts only the latest attempt per node", () => {
    let w = snapshot();
    w = applyEvent(w, { kind: "RUN", state: "FAILED", taskId: "t1", runId: "r2" });
    expect(taskProgress(w.tasks[0])).toEqual({ succeeded: 0, total: 2 });
    w = applyEvent(w, { kind: "RUN", state: "QUEUED", taskId: "t1", runId: "r9", run: { id: "r9", attempt: 2, node: { id: "n2" }, task: { id: "t1" } } });
    w = applyEvent(w, { kind: "RUN", state: "SUCCEEDED", runId: "r9", run: { id: "r9", attempt: 2, node: { id: "n2" }, task: { id: "t1" } } });
    expect(w.tasks[0].runs).toHaveLength(3);
    expect(taskProgress(w.tasks[0])).toEqual({ succeeded: 1, total: 2 });
  });

  it("returns the same object when an event changes nothing (no re-render)", () => {
    const w = snapshot();
    expect(applyEvent(w, { kind: "RUN", state: "RUNNING", taskId: "t1", runId: "r1" })).toBe(w);
    expect(applyEvent(w, { kind: "TASK", state: "RUNNING", taskId: "unknown" })).toBe(w);
  });

  it("lets live events move a state back (a retried task), in arrival order", () => {
    let w = snapshot();
    w = applyEvent(w, { kind: "TASK", state: "FAILED", taskId: "t1" });
    w = applyEvent(w, { kind: "TASK", state: "QUEUED", taskId: "t1" });
    expect(w.tasks[0].state).toBe("QUEUED");
  });

  it("merges events that came before the snapshot only forward", () => {
    let live = liveWorkflowReducer(INITIAL_LIVE_WORKFLOW, { type: "events", events: [{ kind: "RUN", state: "QUEUED", taskId: "t1", runId: "r1" }] });
    live = liveWorkflowReducer(live, { type: "events", events: [{ kind: "RUN", state: "SUCCEEDED", taskId: "t1", runId: "r2" }] });
    expect(live.workflow).toBeNull();
    live = liveWorkflowReducer(live, { type: "snapshot", workflow: snapshot() });
    expect(live.workflow!.tasks[0].runs.map((r) => r.state)).toEqual(["RUNNING", "SUCCEEDED"]);
    expect(live.early).toEqual([]);
    live = liveWorkflowReducer(live, { type: "events", events: [{ kind: "WORKFLOW", state: "SUCCEEDED" }] });
    expect(live.workflow!.state).toBe("SUCCEEDED");
  });

  it("after a resync, keeps showing events and merges them into the fresh snapshot", () => {
    let live = liveWorkflowReducer(INITIAL_LIVE_WORKFLOW, { type: "snapshot", workflow: snapshot() });
    live = liveWorkflowReducer(live, { type: "resync" });
    live = liveWorkflowReducer(live, { type: "events", events: [{ kind: "RUN", state: "SUCCEEDED", taskId: "t1", runId: "r1" }] });
    expect(live.workflow!.tasks[0].runs[0].state).toBe("SUCCEEDED");
    // The fresh snapshot was read before that event: the event still holds.
    live = liveWorkflowReducer(live, { type: "snapshot", workflow: snapshot() });
    expect(live.workflow!.tasks[0].runs[0].state).toBe("SUCCEEDED");
    expect(live.awaiting).toBe(false);
  });

  it("applies a burst of 2,001 events (a cancel of 1,000 tasks) at once, quickly", () => {
    const big: WorkflowView = {
      ...snapshot(),
      tasks: Array.from({ length: 1_000 }, (_, i) => ({ id: `t${i}`, key: `t${i}`, state: "QUEUED" as const, dependsOn: [], runs: [{ id: `r${i}`, taskId: `t${i}`, nodeId: "n1", attempt: 1, state: "QUEUED" as const }] })),
    };
    const events: WorkflowEvent[] = [
      ...big.tasks.map((t): WorkflowEvent => ({ kind: "RUN", state: "CANCELLED", taskId: t.id, runId: t.runs[0].id })),
      ...big.tasks.map((t): WorkflowEvent => ({ kind: "TASK", state: "CANCELLED", taskId: t.id })),
      { kind: "WORKFLOW", state: "CANCELLED" },
    ];
    const started = performance.now();
    const after = applyEvents(big, events);
    expect(performance.now() - started).toBeLessThan(100);
    expect(after.state).toBe("CANCELLED");
    expect(after.tasks.every((t) => t.state === "CANCELLED" && t.runs[0].state === "CANCELLED")).toBe(true);
    expect(big.tasks[0].state).toBe("QUEUED");
  });

  it("counts progress as finished runs of all runs", () => {
    let w = snapshot();
    expect(workflowProgress(w)).toEqual({ done: 0, total: 3 });
    w = applyEvent(w, { kind: "RUN", state: "SUCCEEDED", taskId: "t1", runId: "r1" });
    w = applyEvent(w, { kind: "RUN", state: "FAILED", taskId: "t1", runId: "r2" });
    expect(workflowProgress(w)).toEqual({ done: 2, total: 3 });
  });
});
