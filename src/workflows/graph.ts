/** Checks a submitted task graph: keys, references, self-dependencies and cycles. */
import { BadInputError } from "../kernel/index.js";

export interface GraphTask {
  key: string;
  dependsOn?: string[] | null;
}

const TASK_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Throws BadInputError naming the offending keys; returns the keys in a topological order. */
export function validateGraph(tasks: GraphTask[]): string[] {
  const keys = new Set<string>();
  tasks.forEach((task, i) => {
    if (!TASK_KEY.test(task.key)) throw BadInputError.field(`tasks[${i}].key`, `${JSON.stringify(task.key)} is not a valid task key (1-100 letters, digits, '.', '_', '-')`);
    if (keys.has(task.key)) throw BadInputError.field(`tasks[${i}].key`, `duplicate task key ${JSON.stringify(task.key)}`, { key: task.key });
    keys.add(task.key);
  });
  tasks.forEach((task, i) => {
    for (const dep of task.dependsOn ?? []) {
      if (dep === task.key) throw BadInputError.field(`tasks[${i}].dependsOn`, `task ${JSON.stringify(task.key)} depends on itself`, { key: task.key });
      if (!keys.has(dep)) throw BadInputError.field(`tasks[${i}].dependsOn`, `task ${JSON.stringify(task.key)} depends on unknown task ${JSON.stringify(dep)}`, { key: task.key, dependsOn: dep });
    }
  });
  const deps = new Map(tasks.map((t) => [t.key, [...new Set(t.dependsOn ?? [])]]));
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (key: string): void => {
    const seen = state.get(key);
    if (seen === "done") return;
    if (seen === "visiting") {
      const cycle = [...path.slice(path.indexOf(key)), key];
      throw new BadInputError(`tasks form a cycle: ${cycle.join(" → ")}`, { cycle });
    }
    state.set(key, "visiting");
    path.push(key);
    for (const dep of deps.get(key) ?? []) visit(dep);
    path.pop();
    state.set(key, "done");
    order.push(key);
  };
  for (const task of tasks) visit(task.key);
  return order;
}
