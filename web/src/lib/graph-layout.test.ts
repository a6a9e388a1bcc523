import { describe, expect, it } from "vitest";
import { BOX_HEIGHT, layoutGraph, layoutInput, type GraphTask } from "./graph-layout";

const diamond: GraphTask[] = [
  { id: "a", key: "prepare", dependsOn: [] },
  { id: "b", key: "left", dependsOn: ["a"] },
  { id: "c", key: "right", dependsOn: ["a"] },
  { id: "d", key: "merge", dependsOn: ["b", "c"] },
];

describe("graph layout input", () => {
  it("makes one edge from each dependency to the task that waits for it", () => {
    expect(layoutInput(diamond).edges).toEqual([
      { from: "a", to: "b" },
      { from: "a", to: "c" },
      { from: "b", to: "d" },
      { from: "c", to: "d" },
    ]);
  });

  it("drops dependencies outside the graph, on itself, and repeated ones", () => {
    const input = layoutInput([{ id: "x", key: "x", dependsOn: ["gone", "x", "y", "y"] }, { id: "y", key: "y", dependsOn: [] }]);
    expect(input.edges).toEqual([{ from: "y", to: "x" }]);
  });

  it("sizes boxes for their key within bounds", () => {
    const [short, long, huge] = layoutInput([
      { id: "1", key: "a", dependsOn: [] },
      { id: "2", key: "a-rather-long-task-key", dependsOn: [] },
      { id: "3", key: "k".repeat(500), dependsOn: [] },
    ]).nodes;
    expect(short.width).toBe(150);
    expect(long.width).toBeGreaterThan(short.width);
    expect(huge.width).toBe(260);
    expect(short.height).toBe(BOX_HEIGHT);
  });
});

describe("graph layout", () => {
  it("lays a diamond out left to right: each task right of what it depends on", () => {
    const { tasks, edges, width, height } = layoutGraph(diamond);
    const at = Object.fromEntries(tasks.map((t) => [t.id, t]));
    expect(at.a.x + at.a.width).toBeLessThan(at.b.x);
    expect(at.b.x).toBe(at.c.x);
    expect(at.b.y).not.toBe(at.c.y);
    expect(at.b.x + at.b.width).toBeLessThan(at.d.x);
    expect(edges).toHaveLength(4);
    expect(width).toBeGreaterThan(at.d.x);
    expect(height).toBeGreaterThan(0);
  });

  // Speed is measured by the dashboard browser test (docs/dashboard.md); here: a 1,000-task tree is laid out
  // whole, left to right, with no two boxes on the same spot. The bound only stops a hang.
  it("lays out 1,000 tasks, each after the task it depends on", { timeout: 300_000 }, () => {
    const tasks: GraphTask[] = Array.from({ length: 1_000 }, (_, i) => ({
      id: String(i),
      key: `task-${i}`,
      dependsOn: i === 0 ? [] : [String(Math.floor((i - 1) / 10))],
    }));
    const result = layoutGraph(tasks);
    expect(result.tasks).toHaveLength(1_000);
    const at = Object.fromEntries(result.tasks.map((t) => [t.id, t]));
    for (const task of tasks) for (const parent of task.dependsOn) expect(at[parent].x + at[parent].width).toBeLessThan(at[task.id].x);
    expect(new Set(result.tasks.map((t) => `${t.x},${t.y}`)).size).toBe(1_000);
  });
});
