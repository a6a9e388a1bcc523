/**
 * Announces committed changes (runs, then tasks, then workflows, so a workflow's final event
 * comes last) as live events: delivered to this instance's subscribers at once and
 * to every other orchestrator instance through the live-events fanout.
 */
import type { Broker } from "../messaging/broker.js";
import type { ChangeSet, LogChange, NodeSnapshot, TaskChange, WorkflowChange } from "../runs/change-set.js";
import { reviveRun, type RunRecord } from "../runs/run.mapper.js";
import { RunState } from "../runs/run-state.js";
import type { PubSub } from "./pubsub.js";
import { topics } from "./topics.js";

export type WorkflowEventKind = "WORKFLOW" | "TASK" | "RUN";

export interface WorkflowEventPayload {
  workflowId: string;
  kind: WorkflowEventKind;
  state: RunState;
  taskId: string | null;
  runId: string | null;
  run: RunRecord | null;
  at: Date;
}

interface LiveMessage {
  v: 1;
  origin: string;
  at: string;
  nodes: NodeSnapshot[];
  runs: Record<string, unknown>[];
  tasks: TaskChange[];
  workflows: WorkflowChange[];
  logs: LogChange[];
}

export interface LiveEvents {
  announce(changes: ChangeSet): void;
  /** Handles a message from the fanout (ignores this instance's own). */
  receive(content: unknown): void;
}

const dateFields = ["lastHeartbeatAt", "createdAt", "updatedAt"];

function reviveNode(node: NodeSnapshot): NodeSnapshot {
  const copy: NodeSnapshot = { ...node };
  for (const field of dateFields) if (typeof copy[field] === "string") copy[field] = new Date(copy[field] as string);
  return copy;
}

export function createLiveEvents(instanceId: string, pubsub: PubSub, broker: Pick<Broker, "publishLive"> | null): LiveEvents {
  function deliver(message: LiveMessage): void {
    const at = new Date(message.at);
    for (const raw of message.nodes) {
      const node = reviveNode(raw);
      pubsub.publish(topics.node(node.id), node);
      pubsub.publish(topics.allNodes, node);
    }
    for (const raw of message.runs) {
      const run = reviveRun(raw);
      pubsub.publish(topics.run(run.id), run);
      pubsub.publish(topics.workflow(run.workflowId), event(run.workflowId, "RUN", run.state, run.taskId, run.id, run, at));
    }
    for (const task of message.tasks) {
      pubsub.publish(topics.workflow(task.workflowId), event(task.workflowId, "TASK", task.state, task.id, null, null, at));
    }
    for (const workflow of message.workflows) {
      pubsub.publish(topics.workflow(workflow.id), event(workflow.id, "WORKFLOW", workflow.state, null, null, null, at));
    }
    for (const logs of message.logs) {
      pubsub.publish(topics.runLogs(logs.runId), logs);
      pubsub.publish(topics.taskLogs(logs.taskId), logs);
    }
  }

  return {
    announce(changes) {
      if (changes.isEmpty) return;
      // A JSON round trip gives local subscribers exactly what remote instances receive.
      const message = JSON.parse(
        JSON.stringify({
          v: 1,
          origin: instanceId,
          at: new Date().toISOString(),
          nodes: [...changes.nodes.values()],
          runs: changes.runs,
          tasks: [...changes.tasks.values()],
          workflows: [...changes.workflows.values()],
          logs: changes.logs,
        }),
      ) as LiveMessage;
      deliver(message);
      broker?.publishLive(message);
    },

    receive(content) {
      const message = content as LiveMessage;
      if (!message || message.v !== 1 || message.origin === instanceId) return;
      deliver(message);
    },
  };
}

function event(
  workflowId: string,
  kind: WorkflowEventKind,
  state: RunState,
  taskId: string | null,
  runId: string | null,
  run: RunRecord | null,
  at: Date,
): WorkflowEventPayload {
  return { workflowId, kind, state, taskId, runId, run, at };
}
