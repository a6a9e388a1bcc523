import "reflect-metadata";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { thrownAppError } from "../support/app-error.js";
import { MAX_TASK_INPUTS, validateTaskInputs } from "../../src/workflows/task-inputs.js";

const problem = thrownAppError;

const test = suite("task inputs (files between tasks)");

test("keeps the inputs of tasks that depend on their source, without repeats", () => {
  const inputs = validateTaskInputs([
    { key: "train" },
    {
      key: "aggregate",
      dependsOn: ["train"],
      inputs: [
        { from: "train", files: "weights.bin" },
        { from: "train", files: "weights.bin" },
        { from: "train", files: "out/**/*.csv" },
      ],
    },
  ]);
  assert.equal(inputs, [[], [{ from: "train", files: "weights.bin" }, { from: "train", files: "out/**/*.csv" }]]);
});

test("refuses a from that is not an upstream task, naming the field and the task's dependencies", () => {
  const err = problem(() =>
    validateTaskInputs([{ key: "a" }, { key: "b" }, { key: "c", dependsOn: ["a"], inputs: [{ from: "b", files: "x" }] }]),
  );
  assert.is(err.code, "BAD_USER_INPUT");
  assert.match(err.message, /tasks\[2\]\.inputs\[0\]\.from/);
  assert.match(err.message, /"b", which is not one of its upstream tasks \(it depends only on "a"\)/);
  const alone = problem(() => validateTaskInputs([{ key: "a", inputs: [{ from: "a", files: "x" }] }]));
  assert.match(alone.message, /it depends on no task/);
});

test("refuses file patterns that could leave a sandbox", () => {
  for (const files of ["/etc/passwd", "../x", "a/../b", "", "a//b", "a\\b", "./x"]) {
    const err = problem(() => validateTaskInputs([{ key: "a" }, { key: "b", dependsOn: ["a"], inputs: [{ from: "a", files }] }]));
    assert.match(err.message, /tasks\[1\]\.inputs\[0\]\.files/, files);
  }
});

test(`refuses more than ${MAX_TASK_INPUTS} inputs on one task`, () => {
  const inputs = Array.from({ length: MAX_TASK_INPUTS + 1 }, (_, i) => ({ from: "a", files: `f${i}` }));
  assert.match(problem(() => validateTaskInputs([{ key: "a" }, { key: "b", dependsOn: ["a"], inputs }])).message, /at most 100 inputs/);
});

test.run();
