/** Writes outgoing node messages into the outbox, in the caller's transaction; built by the wire contract. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { runCancelMessage, runDispatchMessage, runInputRefusedMessage, runReleaseMessage, type OutgoingNodeMessage, type ResourceRequest, type RunRelease } from "../../messaging/contracts.js";
import { json, query, queryBound } from "../../db/sql.js";
import type { ChangeSet } from "../../kernel/index.js";
import { inputFilesOfRuns } from "./input-files.js";
import { toolDefinition, toolDigest, type ToolDefinitionSource } from "../../shared/index.js";

interface DispatchRow {
  id: string;
  attempt: number;
  node_id: string;
  workflow_id: string;
  task_id: string;
  tool_name: string;
  tool_version: string;
  tool_digest: string | null;
  executable: string;
  args: ToolDefinitionSource["args"];
  tool_env: Record<string, string>;
  launcher: string;
  image: string | null;
  argv: string[];
  env: Record<string, string>;
  timeout_seconds: number | null;
  result_file: string | null;
  outputs: string[];
  upstream: { taskKey: string; nodeId: string; runId: string; result: unknown }[];
  resources: ResourceRequest;
  datasets: string[];
  /** Whether its task takes input files (only then are they looked up). */
  takes_inputs: boolean;
}

/**
 * Queues one `run.dispatch` message per run, from the run, its task (with its resource requests
 * and the datasets it reads), its tool (with its definition and digest, which a node may pin) and the results of its upstream
 * tasks' successful runs (one read and one insert whatever the number of runs), in priority order.
 */
export async function enqueueDispatch(em: EntityManager, runIds: string[], changes: ChangeSet): Promise<void> {
  if (runIds.length === 0) return;
  // The ids as an array (an index condition whatever the statistics say): as a semi-join of a
  // function scan, a table grown since its last ANALYZE was scanned whole (docs/performance.md).
  // Upstream results start from the task's dependencies (latest attempt per task and node), never
  // from every SUCCEEDED run.
  const rows = await query<DispatchRow>(
    em,
    `select r.id, r.attempt, r.node_id, r.workflow_id, r.task_id, tl.name as tool_name, tl.version as tool_version,
       tl.digest as tool_digest, tl.executable, tl.args, tl.env as tool_env, tl.launcher, tl.image, r.argv, r.env, r.timeout_seconds, tl.result_file, tl.outputs, t.resources, t.datasets,
       jsonb_array_length(t.inputs) > 0 as takes_inputs,
       coalesce((
         select jsonb_agg(jsonb_build_object('taskKey', u.key, 'nodeId', u.node_id, 'runId', u.id, 'result', u.result) order by u.key, u.node_id)
         from (
           select distinct on (ur.task_id, ur.node_id) ut.key, ur.node_id, ur.id, ur.result, ur.state
           from jsonb_array_elements_text(t.depends_on_ids) as d(value)
           join task ut on ut.id = d.value::uuid
           join run ur on ur.task_id = ut.id
           order by ur.task_id, ur.node_id, ur.attempt desc
         ) u
         where u.state = 'SUCCEEDED'
       ), '[]'::jsonb) as upstream
     from run r join task t on t.id = r.task_id join tool tl on tl.id = t.tool_id
     where r.id = any(array(select value::uuid from jsonb_array_elements_text(?::jsonb)))
     order by t.priority desc, r.created_at, r.id`,
    [json(runIds)],
  );
  const inputs = await inputFilesOfRuns(em, rows.filter((r) => r.takes_inputs).map((r) => r.id));
  const messages = rows.map((r) => {
    const files = (inputs.get(r.id) ?? []).map(({ state: _state, reason: _reason, ...file }) => file);
    return runDispatchMessage({
      runId: r.id,
      attempt: r.attempt,
      nodeId: r.node_id,
      workflowId: r.workflow_id,
      taskId: r.task_id,
      tool: toolOfDispatch(r),
      launcher: r.launcher,
      image: r.image,
      argv: r.argv,
      env: r.env,
      timeoutSeconds: r.timeout_seconds,
      resultFile: r.result_file,
      outputs: r.outputs,
      upstream: r.upstream,
      // Left out when empty, so agents older than the field verify (and run) such dispatches.
      ...(Object.keys(r.resources).length > 0 ? { resources: r.resources } : {}),
      // Left out when empty: an older agent drops the field it does not know, and its signature check would then fail.
      ...(r.datasets.length > 0 ? { datasets: r.datasets } : {}),
      // Left out when empty, like datasets.
      ...(files.length > 0 ? { inputs: files } : {}),
    });
  });
  await insertOutbox(em, messages, changes);
}

/** The dispatch's tool: name, version, definition and the digest it was registered with (computed for older tools). */
function toolOfDispatch(r: DispatchRow) {
  const source: ToolDefinitionSource = {
    executable: r.executable,
    launcher: r.launcher,
    image: r.image,
    args: r.args,
    env: r.tool_env,
    resultFile: r.result_file,
    outputs: r.outputs,
  };
  return { name: r.tool_name, version: r.tool_version, digest: r.tool_digest ?? toolDigest(source), definition: toolDefinition(source) };
}

/** Queues a `run.cancel` control message for each (run, attempt) on its node. */
export async function enqueueCancel(
  em: EntityManager,
  runs: { id: string; attempt: number; nodeId: string }[],
  reason: string,
  changes: ChangeSet,
): Promise<void> {
  const messages = runs.map((r) => runCancelMessage({ runId: r.id, attempt: r.attempt, nodeId: r.nodeId, reason }));
  await insertOutbox(em, messages, changes);
}

/**
 * Queues a `run.release` control message per (run, attempt): the released files its node should
 * send, or the chunks of them it should send again.
 */
export async function enqueueRelease(em: EntityManager, releases: Omit<RunRelease, "type" | "v">[], changes: ChangeSet): Promise<void> {
  await insertOutbox(em, releases.map(runReleaseMessage), changes);
}

/** Queues a signed `run.input.refused` for a run that cannot get one of its input files. */
export async function enqueueInputRefusal(em: EntityManager, refusal: { runId: string; attempt: number; nodeId: string; artifactId: string; reason: string }, changes: ChangeSet): Promise<void> {
  await insertOutbox(em, [runInputRefusedMessage({ ...refusal, reason: refusal.reason.slice(0, 1_000) })], changes);
}

/** Inserts the messages in their order (the relay publishes by outbox id). */
async function insertOutbox(em: EntityManager, messages: OutgoingNodeMessage[], changes: ChangeSet): Promise<void> {
  if (messages.length === 0) return;
  // Bound: the batch is large (about 1 KB a message).
  await queryBound(
    em,
    `insert into outbox (message_id, exchange, routing_key, payload, created_at, attempts)
     select gen_random_uuid(), m.value->>'exchange', m.value->>'routingKey', m.value->'payload', now(), 0
     from jsonb_array_elements(?::jsonb) with ordinality as m(value, i)
     order by m.i`,
    [json(messages)],
  );
  changes.outboxWritten = true;
}
