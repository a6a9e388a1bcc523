/**
 * Files a task takes from its upstream tasks (`inputs: [{ from, files }]`): checked at submit, so a
 * workflow naming a task it does not depend on, or a pattern that could leave a sandbox, is refused
 * before anything is stored.
 */
import { Field, InputType, ObjectType } from "type-graphql";
import { BadInputError } from "../kernel/index.js";
import { MAX_ARTIFACT_PATH_CHARS } from "../messaging/contracts.js";

/** Most `inputs` entries of one task. */
export const MAX_TASK_INPUTS = 100;

/** One declared input: the artifacts of task `from` (every run of it) whose path matches `files`. */
export interface TaskInputFilesData {
  from: string;
  files: string;
}

@InputType({ description: "Artifacts of an upstream task that a task's runs receive, read-only, in inputs/<from>/<node>/ of their sandbox." })
export class TaskInputFilesInput implements TaskInputFilesData {
  @Field(() => String, { description: "Key of a task this one depends on (dependsOn)." }) from!: string;
  @Field(() => String, { description: "A sandbox-relative path or glob (*, **, ?) the upstream artifacts' paths must match." }) files!: string;
}

@ObjectType({ description: "Artifacts of an upstream task that each run of this task receives in inputs/<from>/<node>/." })
export class TaskInputFiles implements TaskInputFilesData {
  @Field(() => String, { description: "Key of the upstream task." }) from!: string;
  @Field(() => String, { description: "The path or glob the artifacts' paths match." }) files!: string;
}

export interface InputsTask {
  key: string;
  dependsOn?: string[] | null;
  inputs?: TaskInputFilesData[] | null;
}

/**
 * Checks every task's `inputs`: at most MAX_TASK_INPUTS, each `from` one of the task's own
 * `dependsOn`, each `files` a relative path or glob that stays inside a sandbox. Throws
 * BadInputError naming the field; returns each task's inputs without repeats.
 */
export function validateTaskInputs(tasks: InputsTask[]): TaskInputFilesData[][] {
  return tasks.map((task, i) => {
    const inputs = task.inputs ?? [];
    if (inputs.length > MAX_TASK_INPUTS) throw BadInputError.field(`tasks[${i}].inputs`, `at most ${MAX_TASK_INPUTS} inputs per task`);
    const upstream = new Set(task.dependsOn ?? []);
    const seen = new Set<string>();
    const kept: TaskInputFilesData[] = [];
    inputs.forEach((input, j) => {
      const field = `tasks[${i}].inputs[${j}]`;
      if (!upstream.has(input.from)) {
        const deps = upstream.size === 0 ? "it depends on no task" : `it depends only on ${[...upstream].map((k) => JSON.stringify(k)).join(", ")}`;
        throw BadInputError.field(`${field}.from`, `task ${JSON.stringify(task.key)} takes files from ${JSON.stringify(input.from.slice(0, 100))}, which is not one of its upstream tasks (${deps}); add it to dependsOn`, {
          key: task.key,
          from: input.from,
        });
      }
      const problem = filesPatternProblem(input.files);
      if (problem) throw BadInputError.field(`${field}.files`, `${JSON.stringify(input.files.slice(0, 100))} ${problem}`, { files: input.files });
      const id = `${input.from}\n${input.files}`;
      if (seen.has(id)) return;
      seen.add(id);
      kept.push({ from: input.from, files: input.files });
    });
    return kept;
  });
}

/** Why `files` is not a usable input pattern, or null. */
function filesPatternProblem(files: string): string | null {
  if (files.length === 0 || files.length > MAX_ARTIFACT_PATH_CHARS) return `must have 1-${MAX_ARTIFACT_PATH_CHARS} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(files)) return "holds a control character or a backslash";
  if (files.startsWith("/")) return "is absolute; give a path relative to the upstream run's sandbox";
  if (files.split("/").some((part) => part === ".." || part === "." || part === "")) return "has an empty, '.' or '..' segment";
  return null;
}
