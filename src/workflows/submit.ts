/**
 * Accepting a workflow: the whole graph is validated and every run's argv built before anything is
 * stored; then the workflow, its tasks and runs commit in one transaction, and the scheduler hands
 * ready runs to their nodes.
 */
import { createHash, randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { UniqueConstraintViolationException } from "@mikro-orm/core";
import {
  BadInputError,
  ChangeSet,
  checkText,
  ConflictError,
  describeAmount,
  MAX_NAME_CHARS,
  mergeResources,
  RESOURCE_KINDS,
  RunState,
  validateResources,
  type ResourceAmountsData,
  type ResourceRequest,
  type ResourcesInputData,
  type Viewer,
} from "../kernel/index.js";
import { Node, NodeAdminState, validateLabels, validateNodeId } from "../nodes/index.js";
import { projectForSubmit, projectNodeIds } from "../projects/index.js";
import { createRuns, dispatchReadyRuns, nodeResources, type NewRun } from "../runs/index.js";
import { buildArgv, parseToolRef, Tool } from "../tools/index.js";
import { isToolAllowed } from "../shared/index.js";
import { DATASET_NAME_PATTERN, MAX_DATASETS } from "../messaging/contracts.js";
import { json, queryBound } from "../db/sql.js";
import { validateGraph } from "./graph.js";
import { validateRetryPolicy, type RetryPolicyInput } from "./retry-policy.js";
import { validateTaskInputs, type TaskInputFilesData } from "./task-inputs.js";
import { Task } from "./task.entity.js";
import { Workflow } from "./workflow.entity.js";

export interface TaskData {
  key: string;
  tool: string;
  nodes?: string[] | null;
  nodeSelector?: Record<string, unknown> | null;
  datasets?: string[] | null;
  /** Artifacts of upstream tasks its runs receive (`from` must be in `dependsOn`). */
  inputs?: TaskInputFilesData[] | null;
  params?: Record<string, unknown> | null;
  nodeParams?: { node: string; params: Record<string, unknown> }[] | null;
  dependsOn?: string[] | null;
  priority?: number | null;
  timeoutSeconds?: number | null;
  minSucceeded?: number | null;
  retry?: RetryPolicyInput | null;
  resources?: ResourcesInputData | null;
}

export interface SubmitWorkflowData {
  /** Project id or name; may be omitted when the caller may submit to exactly one project. */
  project?: string | null;
  name?: string | null;
  idempotencyKey?: string | null;
  tasks: TaskData[];
}

export const MAX_TASKS = 10_000;

/**
 * Most runs the submit transaction hands to nodes itself (a scheduler pass, in the scheduler's
 * order, under its lock): the first runs skip a hop to the scheduler; a larger backlog is its.
 */
const DISPATCH_AT_SUBMIT_MAX = 500;

export interface SubmitLimits {
  /** Most runs (tasks × target nodes) one workflow may create. @default 20_000 (FEM_MAX_RUNS_PER_WORKFLOW) */
  maxRunsPerWorkflow: number;
}

/** Canonical JSON (sorted keys) so equal submissions hash equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined && v !== null);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function contentHash(data: SubmitWorkflowData): string {
  return createHash("sha256").update(canonical({ project: data.project, name: data.name, tasks: data.tasks })).digest("hex");
}

async function loadTools(em: EntityManager, tasks: TaskData[]): Promise<Map<string, Tool>> {
  const refs = new Map<string, { name: string; version: string }>();
  tasks.forEach((t, i) => {
    checkText(`tasks[${i}].tool`, t.tool, MAX_NAME_CHARS);
    const ref = parseToolRef(t.tool);
    if (!ref) throw BadInputError.field(`tasks[${i}].tool`, `${JSON.stringify(t.tool)} is not a tool reference (name@version)`, { tool: t.tool });
    refs.set(t.tool, ref);
  });
  const found = await em.find(Tool, { $or: [...refs.values()].map((r) => ({ name: r.name, version: r.version })) });
  const byRef = new Map(found.map((tool) => [tool.ref, tool]));
  tasks.forEach((t, i) => {
    if (!byRef.has(t.tool)) throw BadInputError.field(`tasks[${i}].tool`, `unknown tool ${JSON.stringify(t.tool)}`, { tool: t.tool });
  });
  return byRef;
}

/**
 * The project's nodes a submission may use: those it names, or all of the project's for a label
 * selector or a dataset (whether any of them has it).
 */
async function loadNodes(em: EntityManager, tasks: TaskData[], projectNodes: string[]): Promise<Node[]> {
  const usesSelector = tasks.some((t) => t.nodeSelector || t.datasets?.length);
  const named = new Set(tasks.flatMap((t) => t.nodes ?? []));
  const ids = usesSelector ? projectNodes : projectNodes.filter((id) => named.has(id));
  return ids.length > 0 ? em.find(Node, { id: { $in: ids } }) : [];
}

function targetNodes(task: TaskData, i: number, nodes: Map<string, Node>, tool: Tool): Node[] {
  const field = `tasks[${i}]`;
  if (Boolean(task.nodes?.length) === Boolean(task.nodeSelector)) throw BadInputError.field(field, "give either nodes or nodeSelector");
  const datasets = task.datasets ?? [];
  let targets: Node[];
  if (task.nodes?.length) {
    targets = [...new Set(task.nodes)].map((id) => {
      validateNodeId(`${field}.nodes`, id);
      const node = nodes.get(id);
      if (!node) throw BadInputError.field(`${field}.nodes`, `unknown node ${JSON.stringify(id)} in this workflow's project`, { node: id });
      if (node.adminState !== NodeAdminState.ACTIVE) throw BadInputError.field(`${field}.nodes`, `node ${JSON.stringify(id)} is ${node.adminState} and takes no new work`, { node: id });
      const lacking = datasets.find((name) => !hasDataset(node, name));
      if (lacking !== undefined) {
        throw BadInputError.field(`${field}.nodes`, `node ${JSON.stringify(id)} does not have dataset ${JSON.stringify(lacking)}`, { node: id, dataset: lacking });
      }
      return node;
    });
  } else {
    const selector = validateLabels(`${field}.nodeSelector`, task.nodeSelector);
    const matching = [...nodes.values()]
      .filter((n) => n.adminState === NodeAdminState.ACTIVE && Object.entries(selector).every(([k, v]) => n.labels[k] === v))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    if (matching.length === 0) throw BadInputError.field(`${field}.nodeSelector`, "no active node matches the selector", { nodeSelector: selector });
    targets = matching.filter((n) => datasets.every((name) => hasDataset(n, name)));
    if (targets.length === 0) {
      const list = datasets.map((name) => JSON.stringify(name)).join(", ");
      throw BadInputError.field(`${field}.datasets`, `no active node matching the selector has dataset${datasets.length === 1 ? "" : "s"} ${list}`, { nodeSelector: selector, datasets });
    }
  }
  for (const node of targets) {
    if (!isToolAllowed(node.allowedTools, tool)) {
      throw BadInputError.field(`${field}.tool`, `node ${JSON.stringify(node.id)} does not accept tool ${tool.ref}`, { node: node.id, tool: tool.ref });
    }
    if (!node.launchers.includes(tool.launcher)) {
      throw BadInputError.field(`${field}.tool`, `node ${JSON.stringify(node.id)} has no ${tool.launcher} launcher`, { node: node.id, tool: tool.ref });
    }
  }
  return targets;
}

/**
 * The targets that can ever hold the task's request, by their totals. Named nodes must all hold it;
 * of a selector's nodes those that cannot are left out, and the task is refused when none is left.
 * A total the node neither registered nor reported limits nothing.
 */
function placeableTargets(task: TaskData, i: number, targets: Node[], request: ResourceRequest, totals: Map<string, ResourceAmountsData>): Node[] {
  const field = `tasks[${i}].resources`;
  const shortOf = (node: Node) => RESOURCE_KINDS.find((k) => request[k] !== undefined && (totals.get(node.id)?.[k] ?? Infinity) < request[k]!);
  const placeable = targets.filter((node) => shortOf(node) === undefined);
  if (placeable.length === targets.length) return targets;
  const kind = shortOf(targets.find((node) => !placeable.includes(node))!)!;
  // Of the known totals: at least the node found short has one.
  const largest = Math.max(...targets.map((node) => totals.get(node.id)?.[kind] ?? Infinity).filter(Number.isFinite));
  const facts = { task: task.key, resource: kind, requested: request[kind], largestTotal: largest };
  const wants = `task ${JSON.stringify(task.key)} requests ${describeAmount(kind, request[kind]!)}`;
  if (task.nodes?.length) {
    const short = targets.filter((node) => shortOf(node) === kind).map((n) => JSON.stringify(n.id));
    const whom = short.length === 1 ? `node ${short[0]} has` : `nodes ${short.join(", ")} have`;
    throw BadInputError.field(`${field}.${kind}`, `${wants}, more than ${whom} in total; the largest total of its nodes is ${describeAmount(kind, largest)}`, facts);
  }
  if (placeable.length === 0) {
    throw BadInputError.field(`${field}.${kind}`, `${wants}, more than any node matching nodeSelector has in total; the largest total is ${describeAmount(kind, largest)}`, facts);
  }
  return placeable;
}

function hasDataset(node: Node, name: string): boolean {
  return node.datasets.some((d) => d.name === name);
}

/**
 * Checks the datasets a task names: well-formed, at most MAX_DATASETS, each held by at least one of
 * the project's nodes (an unknown one is refused whatever the targets). Returns them without repeats.
 */
function checkDatasets(task: TaskData, i: number, projectNodes: Map<string, Node>): string[] {
  const field = `tasks[${i}].datasets`;
  const names = [...new Set(task.datasets ?? [])];
  if (names.length > MAX_DATASETS) throw BadInputError.field(field, `at most ${MAX_DATASETS} datasets per task`);
  for (const name of names) {
    if (!DATASET_NAME_PATTERN.test(name)) throw BadInputError.field(field, `${JSON.stringify(name.slice(0, 100))} is not a dataset name (${DATASET_NAME_PATTERN})`);
    if (![...projectNodes.values()].some((n) => hasDataset(n, name))) {
      throw BadInputError.field(field, `unknown dataset ${JSON.stringify(name)}: no node of this workflow's project has it`, { dataset: name });
    }
  }
  return names;
}

/** Refuses an input from a task whose tool declares no `outputs`: it would have no file to give. */
function checkInputSources(tasks: TaskData[], tools: Map<string, Tool>): void {
  const toolOf = new Map(tasks.map((t) => [t.key, tools.get(t.tool)!]));
  tasks.forEach((task, i) => {
    for (const [j, input] of (task.inputs ?? []).entries()) {
      const tool = toolOf.get(input.from)!;
      if (tool.outputs.length > 0) continue;
      throw BadInputError.field(`tasks[${i}].inputs[${j}].from`, `task ${JSON.stringify(input.from)} runs ${tool.ref}, which declares no outputs: it has no files to give`, { from: input.from, tool: tool.ref });
    }
  });
}

function checkNumbers(task: TaskData, i: number, targetCount: number): void {
  const field = `tasks[${i}]`;
  if (task.priority != null && (!Number.isInteger(task.priority) || Math.abs(task.priority) > 1_000_000)) throw BadInputError.field(`${field}.priority`, "must be an integer within ±1000000");
  if (task.timeoutSeconds != null && (!Number.isInteger(task.timeoutSeconds) || task.timeoutSeconds < 1)) throw BadInputError.field(`${field}.timeoutSeconds`, "must be a positive integer");
  if (task.minSucceeded != null && (!Number.isInteger(task.minSucceeded) || task.minSucceeded < 1 || task.minSucceeded > targetCount)) {
    throw BadInputError.field(`${field}.minSucceeded`, `must be from 1 to the number of target nodes (${targetCount})`);
  }
}

export interface SubmitResult {
  workflow: Workflow;
  /** False when an earlier submission with the same idempotency key was returned. */
  created: boolean;
  changes: ChangeSet;
}

/**
 * Accepts a workflow into a project where the viewer is RESEARCHER (or OWNER): its tasks may
 * target only the project's nodes, and it is recorded as submitted by the viewer.
 */
export async function submitWorkflow(em: EntityManager, data: SubmitWorkflowData, viewer: Viewer, limits: SubmitLimits): Promise<SubmitResult> {
  if (data.tasks.length === 0) throw BadInputError.field("tasks", "a workflow needs at least one task");
  if (data.tasks.length > MAX_TASKS) throw BadInputError.field("tasks", `at most ${MAX_TASKS} tasks per workflow`);
  if (data.name != null) checkText("name", data.name, MAX_NAME_CHARS);
  if (data.idempotencyKey != null) {
    if (data.idempotencyKey.length === 0) throw BadInputError.field("idempotencyKey", `1-${MAX_NAME_CHARS} characters`);
    checkText("idempotencyKey", data.idempotencyKey, MAX_NAME_CHARS);
  }
  validateGraph(data.tasks);
  const inputsOf = validateTaskInputs(data.tasks);
  const submittedBy = viewer.subject;
  const hash = contentHash(data);
  // The caller's right to submit is checked before a replay: a key must not hand a workflow back to one no longer allowed.
  const project = await projectForSubmit(em, viewer, data.project);
  const existing = await findByIdempotencyKey(em, submittedBy, data.idempotencyKey ?? null, hash);
  if (existing) return { workflow: existing, created: false, changes: new ChangeSet() };

  const tools = await loadTools(em, data.tasks);
  checkInputSources(data.tasks, tools);
  const nodes = new Map((await loadNodes(em, data.tasks, await projectNodeIds(em, project.id))).map((n) => [n.id, n]));
  const requests = data.tasks.map((t, i) => mergeResources(tools.get(t.tool)!.resources, validateResources(`tasks[${i}].resources`, t.resources)));
  const totals = requests.some((r) => Object.keys(r).length > 0)
    ? new Map((await nodeResources(em, [...nodes.keys()])).map((r) => [r.nodeId, r.totals]))
    : new Map<string, ResourceAmountsData>();
  const workflow = new Workflow();
  workflow.id = randomUUID();
  workflow.name = data.name ?? null;
  workflow.idempotencyKey = data.idempotencyKey ?? null;
  workflow.contentHash = hash;
  workflow.submittedBy = submittedBy;
  workflow.projectId = project.id;
  const datasetsOf = data.tasks.map((input, i) => checkDatasets(input, i, nodes));
  const targetsOf = data.tasks.map((input, i) =>
    placeableTargets(input, i, targetNodes({ ...input, datasets: datasetsOf[i] }, i, nodes, tools.get(input.tool)!), requests[i], totals),
  );
  const runCount = targetsOf.reduce((sum, targets) => sum + targets.length, 0);
  if (runCount > limits.maxRunsPerWorkflow) {
    throw BadInputError.field("tasks", `the workflow would create ${runCount} runs (tasks × target nodes); at most ${limits.maxRunsPerWorkflow}`, { runs: runCount, max: limits.maxRunsPerWorkflow });
  }
  const taskIds = new Map(data.tasks.map((t) => [t.key, randomUUID()]));
  const tasks: Task[] = [];
  const runs: NewRun[] = [];
  data.tasks.forEach((input, i) => {
    const tool = tools.get(input.tool)!;
    const targets = targetsOf[i];
    checkNumbers(input, i, targets.length);
    const overrides = new Map<string, Record<string, unknown>>();
    for (const [j, np] of (input.nodeParams ?? []).entries()) {
      validateNodeId(`tasks[${i}].nodeParams[${j}].node`, np.node);
      if (!targets.some((n) => n.id === np.node)) throw BadInputError.field(`tasks[${i}].nodeParams[${j}].node`, `node ${JSON.stringify(np.node)} is not a target of task ${JSON.stringify(input.key)}`, { node: np.node });
      overrides.set(np.node, np.params);
    }
    const hasDeps = (input.dependsOn ?? []).length > 0;
    const task = new Task();
    Object.assign(task, {
      id: taskIds.get(input.key)!,
      workflowId: workflow.id,
      key: input.key,
      toolId: tool.id,
      params: input.params ?? {},
      nodeParams: Object.fromEntries(overrides),
      nodeIds: targets.map((n) => n.id),
      datasets: datasetsOf[i],
      inputs: inputsOf[i],
      dependsOnIds: [...new Set(input.dependsOn ?? [])].map((k) => taskIds.get(k)!),
      priority: input.priority ?? 0,
      timeoutSeconds: input.timeoutSeconds ?? null,
      retry: validateRetryPolicy(`tasks[${i}].retry`, input.retry),
      resources: requests[i],
      minSucceeded: input.minSucceeded ?? null,
      state: hasDeps ? RunState.PENDING : RunState.QUEUED,
    });
    tasks.push(task);
    for (const node of targets) {
      const params = { ...(input.params ?? {}), ...(overrides.get(node.id) ?? {}) };
      runs.push({
        id: randomUUID(),
        taskId: task.id,
        workflowId: workflow.id,
        nodeId: node.id,
        argv: buildArgv(tool.executable, tool.args, params, `tasks[${i}].params`),
        env: tool.env,
        timeoutSeconds: input.timeoutSeconds ?? tool.timeoutSeconds,
        waitsForUpstream: hasDeps,
      });
    }
  });
  workflow.state = tasks.every((t) => t.state === RunState.PENDING) ? RunState.PENDING : RunState.QUEUED;

  const changes = new ChangeSet();
  try {
    await em.transactional(async (tem) => {
      await tem.insert(Workflow, workflow);
      await insertTasks(tem, tasks);
      await createRuns(tem, runs, changes);
      if (workflow.state === RunState.QUEUED) await dispatchAtSubmit(tem, changes);
    });
  } catch (err) {
    // Two submissions with one key raced; the loser returns the winner's workflow.
    if (err instanceof UniqueConstraintViolationException && data.idempotencyKey) {
      const winner = await findByIdempotencyKey(em.fork(), submittedBy, data.idempotencyKey, hash);
      if (winner) return { workflow: winner, created: false, changes: new ChangeSet() };
    }
    throw err;
  }
  changes.workflows.set(workflow.id, { id: workflow.id, state: workflow.state, submitted: { projectId: workflow.projectId } });
  return { workflow, created: true, changes };
}

/**
 * One scheduler pass inside the submit transaction, so a run that has room reaches its node's queue
 * when the workflow commits. When the pass found the scheduler's lock taken, or filled up, the
 * scheduler is woken after commit as for any new run; otherwise it has nothing left to do.
 */
async function dispatchAtSubmit(em: EntityManager, changes: ChangeSet): Promise<void> {
  const dispatched = await dispatchReadyRuns(em, DISPATCH_AT_SUBMIT_MAX, changes, { wait: false });
  if (dispatched.locked && dispatched.count < DISPATCH_AT_SUBMIT_MAX) changes.schedule = false;
}

/** Inserts the tasks in one statement whatever their number: the rows travel as one JSON parameter. */
async function insertTasks(em: EntityManager, tasks: Task[]): Promise<void> {
  const rows = tasks.map((t) => ({
    id: t.id,
    workflow_id: t.workflowId,
    key: t.key,
    tool_id: t.toolId,
    params: t.params,
    node_params: t.nodeParams,
    node_ids: t.nodeIds,
    datasets: t.datasets,
    inputs: t.inputs,
    depends_on_ids: t.dependsOnIds,
    priority: t.priority,
    timeout_seconds: t.timeoutSeconds,
    resources: t.resources,
    retry: t.retry,
    min_succeeded: t.minSucceeded,
    state: t.state,
    created_at: t.createdAt.toISOString(),
  }));
  await queryBound(
    em,
    `insert into task (id, workflow_id, key, tool_id, params, node_params, node_ids, datasets, inputs, depends_on_ids, priority, timeout_seconds, resources, retry, min_succeeded, state, created_at)
     select x.id, x.workflow_id, x.key, x.tool_id, x.params, x.node_params, x.node_ids, x.datasets, x.inputs, x.depends_on_ids, x.priority, x.timeout_seconds, x.resources, x.retry, x.min_succeeded, x.state, x.created_at
     from jsonb_to_recordset(?::jsonb) as x(id uuid, workflow_id uuid, key text, tool_id uuid, params jsonb, node_params jsonb, node_ids jsonb, datasets jsonb, inputs jsonb,
       depends_on_ids jsonb, priority int, timeout_seconds int, resources jsonb, retry jsonb, min_succeeded int, state text, created_at timestamptz)`,
    [json(rows)],
  );
}

async function findByIdempotencyKey(em: EntityManager, submittedBy: string, key: string | null, hash: string): Promise<Workflow | null> {
  if (!key) return null;
  const existing = await em.findOne(Workflow, { submittedBy, idempotencyKey: key });
  if (!existing) return null;
  if (existing.contentHash !== hash) {
    throw new ConflictError(`idempotency key ${JSON.stringify(key)} was used for a different workflow (${existing.id})`, { workflowId: existing.id });
  }
  return existing;
}
