/**
 * Announces committed changes (runs, then tasks, then workflows, so a workflow's final event
 * comes last) as live events: delivered to this instance's subscribers at once and
 * to every other orchestrator instance through the live-events fanout. Messages from other
 * instances are validated with the wire contract before anything is delivered.
 */
import { LIVE_VERSION, liveMessageSchema, parseMessage, type LiveMessage } from "../messaging/contracts.js";
import type { Broker } from "../messaging/broker.js";
import { isTerminalState, type ChangeSet, type NodeSnapshot, type RunSnapshot, type RunState } from "../kernel/index.js";
import type { Logger } from "../logger.js";
import type { PubSub } from "./pubsub.js";
import { topics } from "./topics.js";

export type WorkflowEventKind = "WORKFLOW" | "TASK" | "RUN";

export interface WorkflowEventPayload {
  workflowId: string;
  kind: WorkflowEventKind;
  state: RunState;
  taskId: string | null;
  runId: string | null;
  run: RunSnapshot | null;
  at: Date;
}

export interface SubmittedWorkflowPayload {
  id: string;
  projectId: string | null;
}

export interface FinishedRunsPayload {
  runs: { id: string; nodeId: string; workflowId: string }[];
}

export interface RunOutputsPayload {
  runId: string;
}

export interface LiveEvents {
  announce(changes: ChangeSet): void;
  /** Handles a message from the fanout (ignores this instance's own and drops invalid ones). */
  receive(content: unknown): void;
}

const nodeDateFields = ["lastHeartbeatAt", "createdAt", "updatedAt"];
const runDateFields = ["createdAt", "queuedAt", "dispatchedAt", "notBefore", "acceptedAt", "startedAt", "finishedAt"];

/** Restores the Date fields of an object that travelled as JSON (a missing one becomes null). */
function revive<T extends Record<string, unknown>>(value: T, dateFields: string[]): T {
  const copy: Record<string, unknown> = { ...value };
  for (const field of dateFields) {
    const raw = copy[field];
    copy[field] = typeof raw === "string" ? new Date(raw) : (raw ?? null);
  }
  return copy as T;
}

export function createLiveEvents(instanceId: string, pubsub: PubSub, broker: Pick<Broker, "publishLive"> | null, logger?: Logger): LiveEvents {
  function deliver(message: LiveMessage): void {
    const at = new Date(message.at);
    for (const raw of message.nodes) {
      const node = revive(raw, nodeDateFields) as NodeSnapshot;
      pubsub.publish(topics.node(node.id), node);
      pubsub.publish(topics.allNodes, node);
    }
    const finished: FinishedRunsPayload["runs"] = [];
    for (const raw of message.runs) {
      const run = revive(raw, runDateFields) as unknown as RunSnapshot;
      pubsub.publish(topics.run(run.id), run);
      pubsub.publish(topics.workflow(run.workflowId), event(run.workflowId, "RUN", run.state, run.taskId, run.id, run, at));
      if (isTerminalState(run.state)) finished.push({ id: run.id, nodeId: run.nodeId, workflowId: run.workflowId });
    }
    if (finished.length > 0) pubsub.publish(topics.finishedRuns, { runs: finished } satisfies FinishedRunsPayload);
    for (const task of message.tasks) {
      pubsub.publish(topics.workflow(task.workflowId), event(task.workflowId, "TASK", task.state as RunState, task.id, null, null, at));
    }
    for (const workflow of message.workflows) {
      pubsub.publish(topics.workflow(workflow.id), event(workflow.id, "WORKFLOW", workflow.state as RunState, null, null, null, at));
      if (workflow.submitted) pubsub.publish(topics.submittedWorkflows, { id: workflow.id, projectId: workflow.submitted.projectId } satisfies SubmittedWorkflowPayload);
    }
    for (const logs of message.logs) {
      pubsub.publish(topics.runLogs(logs.runId), logs);
      pubsub.publish(topics.taskLogs(logs.taskId), logs);
    }
    for (const runId of message.outputs) pubsub.publish(topics.runOutputs(runId), { runId } satisfies RunOutputsPayload);
  }

  return {
    announce(changes) {
      if (changes.isEmpty) return;
      // A JSON round trip gives local subscribers exactly what remote instances receive. Log
      // changes skip it: they hold JSON values only (times as ISO strings), so they would come
      // back equal, and a round trip of every line is the costliest part of a large batch.
      const message = {
        ...(JSON.parse(
          JSON.stringify({
            v: LIVE_VERSION,
            origin: instanceId,
            at: new Date().toISOString(),
            nodes: [...changes.nodes.values()],
            runs: changes.runs,
            tasks: [...changes.tasks.values()],
            workflows: [...changes.workflows.values()],
            outputs: [...changes.outputs],
          }),
        ) as Omit<LiveMessage, "logs">),
        logs: changes.logs as LiveMessage["logs"],
      };
      deliver(message);
      broker?.publishLive(message);
    },

    receive(content) {
      // This instance's own messages come back through the fanout: dropped before validating every line.
      if ((content as { origin?: unknown } | null)?.origin === instanceId) return;
      const parsed = parseMessage(liveMessageSchema, content);
      if (!parsed.ok) {
        logger?.warn("dropped an invalid live message from another instance", { problem: parsed.error });
        return;
      }
      if (parsed.value.origin === instanceId) return;
      deliver(parsed.value);
    },
  };
}

function event(
  workflowId: string,
  kind: WorkflowEventKind,
  state: RunState,
  taskId: string | null,
  runId: string | null,
  run: RunSnapshot | null,
  at: Date,
): WorkflowEventPayload {
  return { workflowId, kind, state, taskId, runId, run, at };
}
