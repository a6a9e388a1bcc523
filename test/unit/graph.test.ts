import { suite } from "uvu";
import * as assert from "uvu/assert";
import { thrownAppError } from "../support/app-error.js";
import { validateGraph } from "../../src/workflows/graph.js";
import { deriveTaskState, deriveWorkflowState } from "../../src/runs/lifecycle/progress.js";
import { RunState } from "../../src/kernel/run-state.js";

const problem = thrownAppError;

const test = suite("task graphs");

test("orders a diamond topologically", () => {
  const order = validateGraph([
    { key: "d", dependsOn: ["b", "c"] },
    { key: "b", dependsOn: ["a"] },
    { key: "c", dependsOn: ["a"] },
    { key: "a" },
  ]);
  assert.ok(order.indexOf("a") < order.indexOf("b") && order.indexOf("b") < order.indexOf("d") && order.indexOf("c") < order.indexOf("d"));
});

test("names the tasks of a cycle", () => {
  const err = problem(() => validateGraph([{ key: "a", dependsOn: ["c"] }, { key: "b", dependsOn: ["a"] }, { key: "c", dependsOn: ["b"] }]));
  assert.match(err.message, /cycle: a → c → b → a/);
  assert.equal(err.facts.cycle, ["a", "c", "b", "a"]);
});

test("names an unknown dependency, a self-dependency and a duplicate key", () => {
  assert.match(problem(() => validateGraph([{ key: "a", dependsOn: ["zz"] }])).message, /unknown task "zz"/);
  assert.match(problem(() => validateGraph([{ key: "a", dependsOn: ["a"] }])).message, /"a" depends on itself/);
  assert.match(problem(() => validateGraph([{ key: "a" }, { key: "a" }])).message, /duplicate task key "a"/);
});

test("derives task state under all and k-of-n policies", () => {
  const { SUCCEEDED, FAILED, RUNNING, QUEUED, CANCELLED } = RunState;
  assert.is(deriveTaskState([SUCCEEDED, SUCCEEDED], null), SUCCEEDED);
  assert.is(deriveTaskState([SUCCEEDED, FAILED], null), FAILED);
  assert.is(deriveTaskState([SUCCEEDED, RUNNING], null), RUNNING);
  assert.is(deriveTaskState([SUCCEEDED, FAILED, SUCCEEDED], 2), SUCCEEDED);
  assert.is(deriveTaskState([FAILED, FAILED, RUNNING], 2), FAILED);
  assert.is(deriveTaskState([QUEUED, QUEUED], null), QUEUED);
  assert.is(deriveTaskState([CANCELLED, SUCCEEDED], null), CANCELLED);
  assert.is(deriveWorkflowState([SUCCEEDED, SUCCEEDED]), SUCCEEDED);
  assert.is(deriveWorkflowState([SUCCEEDED, FAILED]), FAILED);
  assert.is(deriveWorkflowState([SUCCEEDED, QUEUED]), RUNNING);
});

test.run();
