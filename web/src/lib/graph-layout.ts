/** A workflow's tasks laid out left to right (dagre): what goes in, and the boxes and edges that come out. */
import { Graph, layout } from "@dagrejs/dagre";

export interface GraphTask {
  id: string;
  key: string;
  dependsOn: readonly string[];
}

export interface LayoutInput {
  nodes: { id: string; width: number; height: number }[];
  /** From a dependency to the task that waits for it. */
  edges: { from: string; to: string }[];
}

export interface PlacedTask {
  id: string;
  /** Top-left corner and size, in SVG user units. */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlacedEdge {
  from: string;
  to: string;
  points: { x: number; y: number }[];
}

export interface GraphLayout {
  tasks: PlacedTask[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

export const BOX_HEIGHT = 44;
/** Wide enough for the state line, "SUCCEEDED · 10/10". */
const MIN_BOX_WIDTH = 150;
const MAX_BOX_WIDTH = 260;
/** Width of one character of the box's label, roughly, at the graph's font size. */
const CHAR_WIDTH = 7.5;
const BOX_PADDING = 24;

/** Boxes wide enough for their key (within bounds) and one edge per dependency that is in the graph. */
export function layoutInput(tasks: readonly GraphTask[]): LayoutInput {
  const ids = new Set(tasks.map((t) => t.id));
  const nodes = tasks.map((t) => ({
    id: t.id,
    width: Math.min(MAX_BOX_WIDTH, Math.max(MIN_BOX_WIDTH, Math.ceil(t.key.length * CHAR_WIDTH) + BOX_PADDING)),
    height: BOX_HEIGHT,
  }));
  const edges = tasks.flatMap((t) => [...new Set(t.dependsOn)].filter((d) => ids.has(d) && d !== t.id).map((d) => ({ from: d, to: t.id })));
  return { nodes, edges };
}

export function layoutGraph(tasks: readonly GraphTask[]): GraphLayout {
  const input = layoutInput(tasks);
  const graph = new Graph({ multigraph: false });
  graph.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 64, marginx: 16, marginy: 16 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const node of input.nodes) graph.setNode(node.id, { width: node.width, height: node.height });
  for (const edge of input.edges) graph.setEdge(edge.from, edge.to);
  layout(graph);
  const placed = input.nodes.map((node) => {
    const { x, y } = graph.node(node.id) as { x: number; y: number };
    return { id: node.id, x: x - node.width / 2, y: y - node.height / 2, width: node.width, height: node.height };
  });
  const edges = input.edges.map((e) => ({ ...e, points: (graph.edge(e.from, e.to) as { points: { x: number; y: number }[] }).points }));
  const label = graph.graph() as { width?: number; height?: number };
  return { tasks: placed, edges, width: label.width ?? 0, height: label.height ?? 0 };
}
