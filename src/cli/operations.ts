/** The GraphQL operations the CLI sends, with the shapes of their answers. See schema/schema.graphql. */

export const ME = `query { me { subject roles via } }`;

const NODE_FIELDS = `id name labels adminState connectivity capacity activeRuns lastHeartbeatAt health { agentVersion cpus }`;
export const NODES = `query($first: Int, $after: String) { nodes(first: $first, after: $after) { nodes { ${NODE_FIELDS} } pageInfo { hasNextPage endCursor } } }`;
export const NODE_UPDATED = `subscription { nodeUpdated { ${NODE_FIELDS} } }`;
export const REGISTER_NODE = `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { ${NODE_FIELDS} } credential } }`;
export const REMOVE_NODE = `mutation($id: ID!) { removeNode(id: $id) { id removedAt } }`;
export const SET_NODE_ADMIN_STATE = `mutation($id: ID!, $state: NodeAdminState!) { setNodeAdminState(id: $id, state: $state) { ${NODE_FIELDS} } }`;

export interface NodeView {
  id: string;
  name: string | null;
  labels: Record<string, string>;
  adminState: string;
  connectivity: string;
  capacity: number;
  activeRuns: number;
  lastHeartbeatAt: string | null;
  health: { agentVersion: string; cpus: number } | null;
}

const TOOL_FIELDS = `id ref name version executable launcher image timeoutSeconds resultFile outputs digest createdAt`;
export const TOOLS = `query($first: Int, $after: String) { tools(first: $first, after: $after) { nodes { ${TOOL_FIELDS} } pageInfo { hasNextPage endCursor } } }`;
export const REGISTER_TOOL = `mutation($input: RegisterToolInput!) { registerTool(input: $input) { ${TOOL_FIELDS} } }`;

export interface ToolView {
  id: string;
  ref: string;
  executable: string;
  launcher: string;
  timeoutSeconds: number | null;
  digest: string;
  createdAt: string;
}

export interface Page<T> {
  nodes: T[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

const RUN_FIELDS = `id attempt state failureReason exitCode message logLineCount node { id } queuedAt startedAt finishedAt usage { wallMs }`;
const GRAPH_FIELDS = `id name state submittedAt finishedAt tasks { id key state tool { ref } runs { ${RUN_FIELDS} } }`;
export const WORKFLOW = `query($id: ID!) { workflow(id: $id) { ${GRAPH_FIELDS} } }`;
export const SUBMIT_WORKFLOW = `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { ${GRAPH_FIELDS} } }`;
export const CANCEL_WORKFLOW = `mutation($id: ID!) { cancelWorkflow(id: $id) { ${GRAPH_FIELDS} } }`;
export const RETRY_TASK = `mutation($id: ID!) { retryTask(id: $id) { id key state workflow { id } runs { ${RUN_FIELDS} } } }`;
export const WORKFLOW_EVENTS = `subscription($workflowId: ID!) {
  workflowEvents(workflowId: $workflowId) { kind state taskId runId run { ${RUN_FIELDS} } }
}`;
export const TASK_LOGS = `subscription($taskId: ID!) { taskLogs(taskId: $taskId) { runId lines { seq stream at text } } }`;

export interface RunView {
  id: string;
  attempt: number;
  state: string;
  failureReason: string | null;
  exitCode: number | null;
  message: string | null;
  logLineCount: number;
  node: { id: string };
  queuedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  usage: { wallMs: number | null };
}

export interface TaskView {
  id: string;
  key: string;
  state: string;
  tool: { ref: string };
  runs: RunView[];
}

export interface WorkflowView {
  id: string;
  name: string | null;
  state: string;
  submittedAt: string;
  finishedAt: string | null;
  tasks: TaskView[];
}

export interface WorkflowEvent {
  kind: "WORKFLOW" | "TASK" | "RUN";
  state: string;
  taskId: string | null;
  runId: string | null;
  run: RunView | null;
}

export interface LogLine {
  seq: number;
  stream: string;
  at?: string;
  text: string;
}

export interface LogBatch {
  runId: string;
  lines: LogLine[];
}

export const RUN_LOG_PAGE = `query($runId: ID!, $afterSeq: Int, $first: Int) {
  runLogs(runId: $runId, afterSeq: $afterSeq, first: $first) { nodes { seq stream at text } pageInfo { hasNextPage } }
}`;
export const RUN_STATE = `query($id: ID!) { run(id: $id) { id state logLineCount node { id } } }`;
export const RUN_LOGS = `subscription($runId: ID!, $afterSeq: Int) { runLogs(runId: $runId, afterSeq: $afterSeq) { runId lines { seq stream at text } } }`;

export const ACCOUNTING = `query($groupBy: [AccountingDimension!]!, $filter: AccountingFilter) {
  accounting(groupBy: $groupBy, filter: $filter) {
    node tool user day runs succeeded failed cancelled wallMs cpuUserMs cpuSystemMs maxPeakRssBytes logBytes outputBytes
  }
}`;

export interface AccountingRow {
  node: string | null;
  tool: string | null;
  user: string | null;
  day: string | null;
  runs: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  wallMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  maxPeakRssBytes: number;
  logBytes: number;
  outputBytes: number;
}

export const TERMINAL_STATES = ["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"];

export function isTerminal(state: string): boolean {
  return TERMINAL_STATES.includes(state);
}

const ARTIFACT_FIELDS = `id path sizeBytes sha256 state downloadUrl reason`;
export const RUN_OUTPUTS = `query($id: ID!) { run(id: $id) { id attempt node { id } task { id key } outputs { ${ARTIFACT_FIELDS} } } }`;
export const TASK_OUTPUTS = `query($id: ID!) { task(id: $id) { id key runs { id attempt node { id } outputs { ${ARTIFACT_FIELDS} } } } }`;

export interface ArtifactView {
  id: string;
  path: string;
  sizeBytes: number | null;
  sha256: string | null;
  state: string;
  downloadUrl: string | null;
  reason: string | null;
}

export interface RunOutputs {
  id: string;
  attempt: number;
  node: { id: string };
  outputs: ArtifactView[];
}

export const TASK_RUNS = `query($id: ID!) { task(id: $id) { id key state runs { ${RUN_FIELDS} } } }`;
