/** `fem nodes [--watch]`, `fem node register <id>`, `fem node drain|disable|enable|remove <id>`. */
import { allPages, type CommandContext } from "../context.js";
import { CliError } from "../errors.js";
import { NODE_UPDATED, NODES, REGISTER_NODE, REMOVE_NODE, SET_NODE_ADMIN_STATE, type NodeView, type Page } from "../operations.js";
import { ago, colourState, table } from "../render.js";

export interface NodesOptions {
  json?: boolean;
  watch?: boolean;
}

function nodeTable(nodes: NodeView[]): string {
  return table(
    ["NODE", "CONNECTIVITY", "ADMIN STATE", "RUNS", "LAST HEARTBEAT", "AGENT"],
    nodes.map((n) => [n.id, colourState(n.connectivity), colourState(n.adminState), `${n.activeRuns}/${n.capacity}`, ago(n.lastHeartbeatAt), n.health?.agentVersion]),
  );
}

export async function listNodes(ctx: CommandContext, options: NodesOptions): Promise<void> {
  const api = await ctx.api();
  const fetchAll = () => allPages((after) => api.request<{ nodes: Page<NodeView> }>(NODES, { first: 500, after }).then((d) => d.nodes));
  if (!options.watch) {
    const nodes = await fetchAll();
    if (options.json) ctx.out.json(nodes);
    else ctx.out.line(nodes.length ? nodeTable(nodes) : "no nodes registered");
    return;
  }
  await watchNodes(ctx, options, fetchAll);
}

/** Follows `nodeUpdated` until Ctrl-C: redraws the table on a terminal, else one line per change (JSON lines with --json). */
async function watchNodes(ctx: CommandContext, options: NodesOptions, fetchAll: () => Promise<NodeView[]>): Promise<void> {
  const api = await ctx.api();
  const live = api.live();
  const nodes = new Map<string, NodeView>();
  const redraw = Boolean(process.stdout.isTTY) && !options.json;
  const show = (changed: NodeView | null) => {
    if (redraw) {
      process.stdout.write("\u001b[H\u001b[2J");
      ctx.out.line(nodeTable([...nodes.values()].sort((a, b) => a.id.localeCompare(b.id))));
      ctx.out.note("watching node changes; Ctrl-C stops");
    } else if (changed && options.json) process.stdout.write(`${JSON.stringify(changed)}\n`);
    else if (changed) ctx.out.line(`${new Date().toISOString()}  ${changed.id}  ${changed.connectivity}  ${changed.adminState}  ${changed.activeRuns}/${changed.capacity}  heartbeat ${ago(changed.lastHeartbeatAt)}`);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const stopInterrupt = ctx.onInterrupt(() => resolve());
      // Subscribe first, then read the list: a change in between is then not missed.
      live.subscribe<{ nodeUpdated: NodeView }>(NODE_UPDATED, {}, (data) => {
        nodes.set(data.nodeUpdated.id, data.nodeUpdated);
        show(data.nodeUpdated);
      }, (err) => {
        stopInterrupt();
        reject(err);
      });
      fetchAll().then((list) => {
        for (const n of list) if (!nodes.has(n.id)) nodes.set(n.id, n);
        if (redraw) show(null);
        else if (options.json) for (const n of list) process.stdout.write(`${JSON.stringify(n)}\n`);
        else ctx.out.line(nodeTable(list));
      }, reject);
    });
  } finally {
    await live.dispose();
  }
}

export interface RegisterNodeOptions {
  name?: string;
  capacity?: number;
  label?: string[];
  json?: boolean;
}

export async function registerNode(ctx: CommandContext, id: string, options: RegisterNodeOptions): Promise<void> {
  const labels: Record<string, string> = {};
  for (const pair of options.label ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw CliError.usage(`--label ${pair}: expected key=value`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const api = await ctx.api();
  const input = { id, ...(options.name ? { name: options.name } : {}), ...(options.capacity ? { capacity: options.capacity } : {}), ...(options.label ? { labels } : {}) };
  const { registerNode: result } = await api.request<{ registerNode: { node: NodeView; credential: string } }>(REGISTER_NODE, { input });
  if (options.json) return ctx.out.json(result);
  const node = result.node;
  ctx.out.line(`registered node ${node.id} (capacity ${node.capacity}${Object.keys(node.labels).length ? `, labels ${Object.entries(node.labels).map(([k, v]) => `${k}=${v}`).join(",")}` : ""})`);
  ctx.out.line("");
  ctx.out.line(`credential (shown only now; the orchestrator keeps its hash): ${result.credential}`);
  ctx.out.line("");
  ctx.out.line("On the node, keep it in a file only the agent's user can read, and start the agent (docs/agents.md):");
  ctx.out.line(`  install -m 600 /dev/null /etc/fem/${node.id}.credential   # then write the credential into it`);
  ctx.out.line(`  AMQP_URL='amqp://<broker>:5672/<vhost>' FEM_NODE_ID=${node.id} \\`);
  ctx.out.line(`  FEM_NODE_CREDENTIAL_FILE=/etc/fem/${node.id}.credential FEM_ORCHESTRATOR_PUBLIC_KEY_FILE=/etc/fem/orchestrator.pub \\`);
  ctx.out.line(`  FEM_SANDBOX_DIR=/var/lib/fem/sandbox FEM_CAPACITY=${node.capacity} fem-agent`);
}

const ADMIN_STATES = { drain: "DRAINING", disable: "DISABLED", enable: "ACTIVE" } as const;

export async function setAdminState(ctx: CommandContext, action: keyof typeof ADMIN_STATES, id: string, options: { json?: boolean }): Promise<void> {
  const api = await ctx.api();
  const { setNodeAdminState: node } = await api.request<{ setNodeAdminState: NodeView }>(SET_NODE_ADMIN_STATE, { id, state: ADMIN_STATES[action] });
  if (options.json) return ctx.out.json(node);
  ctx.out.line(`node ${node.id} is ${colourState(node.adminState)} (${node.activeRuns} runs held)`);
}

/** Removes a DISABLED node with no unfinished runs: its broker user and queues go, its history stays. */
export async function removeNode(ctx: CommandContext, id: string, options: { json?: boolean }): Promise<void> {
  const api = await ctx.api();
  const { removeNode: node } = await api.request<{ removeNode: { id: string; removedAt: string } }>(REMOVE_NODE, { id });
  if (options.json) return ctx.out.json(node);
  ctx.out.line(`removed node ${node.id} at ${node.removedAt}: its broker user and queues are deleted; its runs and accounting stay`);
}
