import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ChangeSet, RunState, type RunSnapshot } from "../../src/kernel/index.js";

const test = suite("change sets: when the scheduler looks again");

const run = (state: RunState): RunSnapshot => ({ id: "r", taskId: "t", workflowId: "w", nodeId: "n", attempt: 1, state, failureReason: null });

test("a run the node took or started holds its slot: no scheduler pass", () => {
  const changes = new ChangeSet();
  changes.addRuns([run(RunState.ACCEPTED), run(RunState.RUNNING)]);
  assert.is(changes.schedule, false);
  assert.is(changes.runs.length, 2, "both transitions are still announced");
});

test("a run that became ready or freed its slot wakes the scheduler", () => {
  for (const state of [RunState.PENDING, RunState.QUEUED, RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.SKIPPED]) {
    const changes = new ChangeSet();
    changes.addRuns([run(RunState.RUNNING), run(state)]);
    assert.is(changes.schedule, true, state);
  }
});

test("no runs, no pass", () => {
  const changes = new ChangeSet();
  changes.addRuns([]);
  assert.is(changes.schedule, false);
});

test.run();
