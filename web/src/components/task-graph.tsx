/** A workflow's DAG, left to right, each task coloured by its live state with k of n runs succeeded. */
import { useMemo } from "react";
import { layoutGraph } from "../lib/graph-layout";
import { stateColours } from "../lib/states";
import { taskProgress, type TaskView } from "../lib/workflow-model";

export interface TaskGraphProps {
  tasks: readonly TaskView[];
  selected: string | null;
  onSelect(taskId: string): void;
}

/** Layout depends on the graph's shape only, not on states: recomputed when tasks or edges change. */
function shapeKey(tasks: readonly TaskView[]): string {
  return tasks.map((t) => `${t.id}:${t.key}<${t.dependsOn.join(",")}`).join("|");
}

export function TaskGraph({ tasks, selected, onSelect }: TaskGraphProps) {
  const key = shapeKey(tasks);
  // eslint-disable-next-line react-hooks/exhaustive-deps -- `key` is the graph's shape: a state change alone must not lay it out again
  const layout = useMemo(() => layoutGraph(tasks), [key]);
  const byId = useMemo(() => new Map(tasks.map((t) => [t.id, t])), [tasks]);
  return (
    <div className="graph-scroll">
      <svg
        className="task-graph"
        width={layout.width}
        height={layout.height}
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        role="group"
        aria-label="Task graph"
        data-testid="task-graph"
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" fill="#6b7280" />
          </marker>
        </defs>
        {layout.edges.map((edge) => (
          <polyline
            key={`${edge.from}-${edge.to}`}
            className="edge"
            points={edge.points.map((p) => `${p.x},${p.y}`).join(" ")}
            fill="none"
            stroke="#6b7280"
            strokeWidth={1.5}
            markerEnd="url(#arrow)"
          />
        ))}
        {layout.tasks.map((box) => {
          const task = byId.get(box.id)!;
          const colours = stateColours(task.state);
          const { succeeded, total } = taskProgress(task);
          const select = () => onSelect(task.id);
          return (
            <g
              key={box.id}
              className="task"
              transform={`translate(${box.x},${box.y})`}
              role="button"
              tabIndex={0}
              aria-pressed={selected === task.id}
              data-task-key={task.key}
              data-state={task.state}
              onClick={select}
              onKeyDown={(e) => {
                if (e.key === "Enter" || e.key === " ") {
                  e.preventDefault();
                  select();
                }
              }}
            >
              <rect width={box.width} height={box.height} rx={6} fill={colours.background} stroke={selected === task.id ? "#111827" : colours.border} strokeWidth={selected === task.id ? 3 : 1.5} />
              {/* The box's accessible name is its visible text (key, state, k/n): no label that says otherwise. */}
              <text x={10} y={18} fill={colours.foreground} className="task-key">
                {task.key.length > 32 ? `${task.key.slice(0, 31)}…` : task.key}
              </text>
              <text x={10} y={35} fill={colours.foreground} className="task-state" data-testid="task-progress">
                {task.state} · {succeeded}/{total}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}
