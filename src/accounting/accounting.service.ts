/** Usage of finished runs, summed by node, tool, user and/or day, in one SQL statement. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { BadInputError, checkUuid, readableProjectIds, type Viewer } from "../kernel/index.js";
import { json, query } from "../db/sql.js";

export enum AccountingDimension {
  NODE = "NODE",
  TOOL = "TOOL",
  USER = "USER",
  DAY = "DAY",
}

export interface AccountingFilterData {
  from?: Date | null;
  to?: Date | null;
  nodes?: string[] | null;
  /** `name` or `name@version`. */
  tools?: string[] | null;
  workflowId?: string | null;
  /** A project id. */
  project?: string | null;
}

export interface AccountingRowData {
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
  releasedBytes: number;
}

const columns: Record<AccountingDimension, { select: string; alias: keyof AccountingRowData }> = {
  [AccountingDimension.NODE]: { select: "r.node_id", alias: "node" },
  [AccountingDimension.TOOL]: { select: "tl.name || '@' || tl.version", alias: "tool" },
  [AccountingDimension.USER]: { select: "coalesce(w.submitted_by, '')", alias: "user" },
  [AccountingDimension.DAY]: { select: "to_char(r.finished_at at time zone 'UTC', 'YYYY-MM-DD')", alias: "day" },
};

/** Sums over runs that finished (terminal, with a finish time) within the filter. */
export async function accounting(em: EntityManager, viewer: Viewer, groupBy: AccountingDimension[], filter: AccountingFilterData): Promise<AccountingRowData[]> {
  const dims = [...new Set(groupBy)];
  if (dims.length === 0) throw BadInputError.field("groupBy", "name at least one of NODE, TOOL, USER, DAY");
  const where = ["r.finished_at is not null"];
  const params: unknown[] = [];
  const condition = (sql: string, ...values: unknown[]) => {
    where.push(sql);
    params.push(...values);
  };
  // Only runs the caller may see: its projects' workflows and the runs on the nodes it operates.
  const readable = readableProjectIds(viewer);
  if (readable) condition("(w.project_id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) or r.node_id in (select value from jsonb_array_elements_text(?::jsonb)))", json(readable), json([...viewer.operatedNodes]));
  if (filter.project) {
    checkUuid("filter.project", filter.project);
    condition("w.project_id = ?::uuid", filter.project);
  }
  if (filter.from) condition("r.finished_at >= ?", filter.from);
  if (filter.to) condition("r.finished_at < ?", filter.to);
  if (filter.nodes?.length) condition("r.node_id in (select value from jsonb_array_elements_text(?::jsonb))", json(filter.nodes));
  if (filter.tools?.length) {
    const tools = json(filter.tools);
    condition("(tl.name in (select value from jsonb_array_elements_text(?::jsonb)) or tl.name || '@' || tl.version in (select value from jsonb_array_elements_text(?::jsonb)))", tools, tools);
  }
  if (filter.workflowId) {
    checkUuid("filter.workflowId", filter.workflowId);
    condition("r.workflow_id = ?::uuid", filter.workflowId);
  }
  const selected = dims.map((d) => `${columns[d].select} as "${columns[d].alias}"`);
  const rows = await query<Record<string, unknown>>(
    em,
    `select ${selected.join(", ")},
       count(*)::int as runs,
       count(*) filter (where r.state = 'SUCCEEDED')::int as succeeded,
       count(*) filter (where r.state = 'FAILED')::int as failed,
       count(*) filter (where r.state = 'CANCELLED')::int as cancelled,
       coalesce(sum(r.wall_ms), 0) as "wallMs",
       coalesce(sum(r.cpu_user_ms), 0) as "cpuUserMs",
       coalesce(sum(r.cpu_system_ms), 0) as "cpuSystemMs",
       coalesce(max(r.peak_rss_bytes), 0) as "maxPeakRssBytes",
       coalesce(sum(r.log_bytes), 0) as "logBytes",
       coalesce(sum(r.output_bytes), 0) as "outputBytes",
       coalesce(sum((select sum(a.size_bytes) from artifact a where a.run_id = r.id and a.state in ('AVAILABLE', 'EXPIRED'))), 0) as "releasedBytes"
     from run r join task t on t.id = r.task_id join tool tl on tl.id = t.tool_id join workflow w on w.id = r.workflow_id
     where ${where.join(" and ")}
     group by ${dims.map((_, i) => i + 1).join(", ")}
     order by ${dims.map((_, i) => i + 1).join(", ")}`,
    params,
  );
  return rows.map((row) => ({
    node: (row.node as string | undefined) ?? null,
    tool: (row.tool as string | undefined) ?? null,
    user: (row.user as string | undefined) ?? null,
    day: (row.day as string | undefined) ?? null,
    runs: row.runs as number,
    succeeded: row.succeeded as number,
    failed: row.failed as number,
    cancelled: row.cancelled as number,
    wallMs: Number(row.wallMs),
    cpuUserMs: Number(row.cpuUserMs),
    cpuSystemMs: Number(row.cpuSystemMs),
    maxPeakRssBytes: Number(row.maxPeakRssBytes),
    logBytes: Number(row.logBytes),
    outputBytes: Number(row.outputBytes),
    releasedBytes: Number(row.releasedBytes),
  }));
}

/** Workflows whose project a live accounting subscription remembers (a workflow never changes project). */
const MAX_REMEMBERED_WORKFLOWS = 10_000;

/**
 * Of these runs that just ended, how many the viewer's accounting counts: runs of its projects'
 * workflows and runs on the nodes it operates (all for ADMIN). `projectOf` remembers each
 * workflow's project across calls, so a busy workflow costs one statement, not one per change.
 */
export async function countVisibleFinishedRuns(
  em: EntityManager,
  viewer: Viewer,
  runs: readonly { nodeId: string; workflowId: string }[],
  projectOf: Map<string, string | null>,
): Promise<number> {
  const readable = readableProjectIds(viewer);
  if (readable === null) return runs.length;
  const unknown = [...new Set(runs.filter((r) => !viewer.operatedNodes.has(r.nodeId) && !projectOf.has(r.workflowId)).map((r) => r.workflowId))];
  if (unknown.length > 0) {
    if (projectOf.size + unknown.length > MAX_REMEMBERED_WORKFLOWS) projectOf.clear();
    const rows = await query<{ id: string; project_id: string | null }>(em, `select id, project_id from workflow where id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`, [json(unknown)]);
    for (const row of rows) projectOf.set(row.id, row.project_id);
  }
  const projects = new Set(readable);
  return runs.filter((r) => viewer.operatedNodes.has(r.nodeId) || projects.has(projectOf.get(r.workflowId) ?? "")).length;
}
