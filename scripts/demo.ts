/**
 * `npm run demo`: an orchestrator, two local agents (hospital-a, hospital-b), each holding its
 * values as a dataset, a sample tool pinned in the nodes' policy files and run in the `sandbox`
 * launcher (bubblewrap; the `process` launcher, with a warning, where it is not installed), and a
 * federated workflow, with state changes and log lines printed live. Uses its own database
 * (FEM_DEMO_DATABASE, default fem_demo, on DATABASE_URL's server; recreated each time) and leaves
 * nothing running.
 */
import "reflect-metadata";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import amqp from "amqplib";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { createOrchestrator, type Orchestrator } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { rabbitmqUnreachable, ServiceUnreachableError } from "../src/unreachable.js";
import { createLogger } from "../src/logger.js";
import { nodeQueueNames } from "../src/messaging/contracts.js";
import { AMQP_TLS_SETTINGS, amqpSocketOptions, amqpUrlsOf, readAmqpTls, withTimeout, type AmqpTls, type AmqpTlsFiles } from "../src/shared/index.js";
import { demoDatabaseUrl, inheritedPath, resetDatabase } from "./demo-support.js";

/** Each hospital's values: its dataset `values` (a file values.csv), which never leaves the node. */
const NODES = [
  { id: "hospital-a", values: [4.1, 5.3, 6.2, 5.8, 4.9] },
  { id: "hospital-b", values: [7.0, 6.4, 7.7] },
];
/** Quoted arguments at least this long (the tool's inline script in its SYSTEM "starting:" line) print as "…". */
const MAX_QUOTED_CHARS = 80;
const WORKFLOW_TIMEOUT_MS = 60_000;
const toolScript = fileURLToPath(new URL("./sample-tools/local-stats.js", import.meta.url));
const agentBin = fileURLToPath(new URL("../src/agent/main.js", import.meta.url));

const time = () => new Date().toISOString().slice(11, 23);
const say = (line: string) => console.log(line);

/** The demo's own ADMIN token, made afresh each run (the demo's database is recreated too). */
const adminToken = `fem_pat_demo_${randomBytes(24).toString("base64url")}`;

async function gql(url: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
  if (body.errors?.length) throw Object.assign(new Error(body.errors.map((e) => e.message).join("; ")), { code: body.errors[0].extensions?.code });
  return body.data;
}

/** Empties the demo nodes' queues, so work left by an interrupted demo does not run now. */
async function purgeDemoQueues(amqpUrl: string, tls: AmqpTls): Promise<void> {
  const connection = await amqp.connect(amqpUrl, amqpSocketOptions(amqpUrl, tls));
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => undefined);
    for (const node of NODES) {
      for (const queue of Object.values(nodeQueueNames(node.id))) await channel.purgeQueue(queue).catch(() => undefined);
    }
    await channel.close().catch(() => undefined);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** The broker URL an agent gets: no user in it (it connects as its node's own user). */
function withoutUser(amqpUrl: string): string {
  const url = new URL(amqpUrl);
  url.username = "";
  url.password = "";
  return url.toString();
}

/** True when bubblewrap runs here (`bwrap --version`), so the demo can use the sandbox launcher. */
function bubblewrapWorks(): boolean {
  try {
    execFileSync("bwrap", ["--version"], { stdio: "ignore", timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

/** The orchestrator's FEM_AMQP_*_FILE settings, passed on to the demo's agents (which run on the same machine). */
function agentTlsEnv(files: AmqpTlsFiles): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of Object.keys(AMQP_TLS_SETTINGS) as (keyof AmqpTlsFiles)[]) {
    const file = files[key];
    if (file !== null) env[AMQP_TLS_SETTINGS[key]] = file;
  }
  return env;
}

interface AgentFiles {
  sandboxDir: string;
  publicKeyFile: string;
  credentialFile: string;
  policyFile: string;
  tls: AmqpTlsFiles;
}

function startAgent(nodeId: string, amqpUrls: string[], launchers: string[], files: AgentFiles): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, [agentBin], {
    env: {
      PATH: inheritedPath(),
      AMQP_URL: amqpUrls.map(withoutUser).join(","),
      FEM_NODE_CREDENTIAL_FILE: files.credentialFile,
      FEM_NODE_ID: nodeId,
      FEM_SANDBOX_DIR: files.sandboxDir,
      FEM_CAPACITY: "2",
      FEM_HEARTBEAT_INTERVAL_MS: "1000",
      FEM_ORCHESTRATOR_PUBLIC_KEY_FILE: files.publicKeyFile,
      FEM_POLICY_FILE: files.policyFile,
      ...agentTlsEnv(files.tls),
      FEM_LAUNCHERS: launchers.join(","),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent ${nodeId} did not start within 20 s:\n${output}`)), 20_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (/ready/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`agent ${nodeId} exited (${code}):\n${output}`));
    });
  });
  ready.catch(() => undefined);
  return { child, ready };
}

/** Resolves once every demo node has reported its dataset in a heartbeat (submit targets only nodes that have it). */
async function datasetsReported(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const data = await gql(url, `{ nodes { edges { node { datasets { name } } } } }`);
    if (data.nodes.edges.filter((e: any) => e.node.datasets.length > 0).length >= NODES.length) return;
    if (Date.now() > deadline) throw new Error(`the agents did not report their datasets within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function shortened(text: string): string {
  return text.replace(new RegExp(`"(?:[^"\\\\]|\\\\.){${MAX_QUOTED_CHARS},}"`, "g"), '"…"');
}

async function stopAgent(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

async function main(): Promise<number> {
  const parsed = loadConfig({ LOG_LEVEL: "warn" });
  if (!parsed.ok) {
    for (const p of parsed.problems) console.error(`fem demo: ${p}`);
    return 1;
  }
  let databaseUrl: string;
  try {
    databaseUrl = demoDatabaseUrl(parsed.config.databaseUrl);
  } catch (err) {
    console.error(`fem demo: ${(err as Error).message}`);
    return 1;
  }
  const sandboxRoot = mkdtempSync(join(tmpdir(), "fem-demo-"));
  // The demo's own signing key; its agents pin the public key written next to it.
  const signingKeyFile = join(sandboxRoot, "orchestrator-key.pem");
  const credentialFileOf = (nodeId: string) => join(sandboxRoot, `${nodeId}.credential`);
  const sandboxed = bubblewrapWorks();
  const launcher = sandboxed ? "sandbox" : "process";
  const launchers = sandboxed ? ["sandbox", "process"] : ["process"];
  const config = { ...parsed.config, databaseUrl, auth: "on" as const, bootstrapAdminToken: adminToken, signingKeyFile };
  const agents: ChildProcess[] = [];
  let orchestrator: Orchestrator | null = null;
  let client: ReturnType<typeof createClient> | null = null;
  try {
    await resetDatabase(config.databaseUrl);
    const amqpTls = await readAmqpTls(config.amqpTls);
    await purgeDemoQueues(config.amqpUrl, amqpTls).catch((err: unknown) => {
      throw rabbitmqUnreachable(config.amqpUrl, err);
    });
    orchestrator = await createOrchestrator(config, createLogger(config.logLevel, undefined, { format: config.logFormat }));
    const url = orchestrator.url;
    say(`FEM demo: orchestrator at ${url} (signed in with a fresh ADMIN API token)`);
    if (!sandboxed) say("warning: bubblewrap is not installed, so runs use the process launcher, which isolates nothing (apt-get install bubblewrap)");

    // A project (the collaboration) with the demo nodes, and the demo's admin as its OWNER.
    const me = await gql(url, `{ me { subject } }`);
    await gql(url, `mutation { createProject(input: { name: "demo", description: "federated mean across the demo hospitals" }) { id } }`);
    await gql(url, `mutation($s: String!) { addProjectMember(project: "demo", subject: $s, role: OWNER) { subject } }`, { s: me.me.subject });
    for (const node of NODES) {
      const registered = await gql(url, `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id } credential } }`, {
        input: { id: node.id, name: `Demo ${node.id}`, capacity: 2, labels: { kind: "hospital" }, launchers },
      });
      // The node's own broker password, shown once: its agent reads it from a file only it may read.
      writeFileSync(credentialFileOf(node.id), registered.registerNode.credential, { mode: 0o600 });
      await gql(url, `mutation($n: ID!) { addProjectNode(project: "demo", nodeId: $n) { id } }`, { n: node.id });
    }
    say(`project demo: nodes ${NODES.map((n) => n.id).join(", ")} (own broker users)`);
    // The script goes inline (node --eval): a sandboxed run sees /usr and its own directory, not this checkout.
    const tool = await gql(url, `mutation($input: RegisterToolInput!) { registerTool(input: $input) { digest } }`, {
      input: {
        name: "local-stats",
        version: "1.0.0",
        executable: process.execPath,
        launcher,
        args: [
          { id: "inputType", type: "STRING", position: 0, default: "--input-type=module" },
          { id: "script", type: "STRING", position: 1, prefix: "--eval", default: readFileSync(toolScript, "utf8") },
          { id: "end", type: "STRING", position: 2, default: "--" },
          { id: "site", type: "STRING", position: 3, prefix: "--site", required: true },
          { id: "delayMs", type: "INT", position: 4, prefix: "--delay-ms", default: 250 },
        ],
        timeoutSeconds: 60,
        resultFile: "result.json",
      },
    });
    say(`tool registered: local-stats@1.0.0 (count, sum and mean of a node's dataset "values"), launcher: ${launcher}`);

    // Each node's policy file pins the tool by digest and names the node's dataset; only the agent knows its path.
    const started = NODES.map((n) => {
      const datasetDir = join(sandboxRoot, "datasets", n.id);
      mkdirSync(datasetDir, { recursive: true, mode: 0o755 });
      writeFileSync(join(datasetDir, "values.csv"), `${n.values.join("\n")}\n`, { mode: 0o644 });
      const policy = { tools: [{ name: "local-stats", version: "1.0.0", digest: tool.registerTool.digest }], datasets: { values: { path: datasetDir, description: `${n.id}'s values` } } };
      const policyFile = join(sandboxRoot, `${n.id}-policy.json`);
      writeFileSync(policyFile, JSON.stringify(policy, null, 2));
      const files = { sandboxDir: join(sandboxRoot, n.id), publicKeyFile: `${signingKeyFile}.pub`, credentialFile: credentialFileOf(n.id), policyFile, tls: config.amqpTls };
      return startAgent(n.id, amqpUrlsOf(config), launchers, files);
    });
    agents.push(...started.map((s) => s.child));
    await Promise.all(started.map((s) => s.ready));
    await datasetsReported(url, 10_000);
    say(`agents running: ${NODES.map((n) => n.id).join(", ")} (launchers ${launchers.join(", ")}; each holds a dataset "values")`);

    const submitted = await gql(url, `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id tasks { runs { id node { id } } } } }`, {
      input: {
        project: "demo",
        name: "federated mean (demo)",
        idempotencyKey: `demo-${Date.now()}`,
        tasks: [
          {
            key: "local-stats",
            tool: "local-stats@1.0.0",
            nodeSelector: { kind: "hospital" },
            datasets: ["values"],
            params: { site: "" },
            nodeParams: NODES.map((n) => ({ node: n.id, params: { site: n.id } })),
          },
        ],
      },
    });
    const workflowId: string = submitted.submitWorkflow.id;
    const runs: { id: string; node: { id: string } }[] = submitted.submitWorkflow.tasks[0].runs;
    const nodeOfRun = new Map(runs.map((r) => [r.id, r.node.id]));
    say(`workflow ${workflowId} submitted: one task on ${runs.length} nodes; following it live\n`);

    client = createClient({ url: orchestrator.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${adminToken}` } });
    const finished = new Promise<string>((resolve, reject) => {
      client!.subscribe(
        { query: `subscription($id: ID!) { workflowEvents(workflowId: $id) { kind state runId } }`, variables: { id: workflowId } },
        {
          next: ({ data }) => {
            const e = (data as any).workflowEvents;
            if (e.kind === "RUN") say(`${time()}  ${nodeOfRun.get(e.runId)?.padEnd(10)} run      ${e.state}`);
            if (e.kind === "TASK") say(`${time()}  ${"".padEnd(10)} task     ${e.state}`);
            if (e.kind === "WORKFLOW") {
              say(`${time()}  ${"".padEnd(10)} workflow ${e.state}`);
              if (["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"].includes(e.state)) resolve(e.state);
            }
          },
          error: reject,
          complete: () => undefined,
        },
      );
    });
    for (const run of runs) {
      client.subscribe(
        { query: `subscription($id: ID!) { runLogs(runId: $id, afterSeq: 0) { lines { seq stream text } } }`, variables: { id: run.id } },
        {
          next: ({ data }) => {
            for (const line of (data as any).runLogs.lines) say(`${time()}  ${run.node.id.padEnd(10)} ${String(line.stream).padEnd(6)} ${shortened(line.text)}`);
          },
          error: () => undefined,
          complete: () => undefined,
        },
      );
    }
    // The workflow may have finished before the subscription started: check the stored state too.
    const state = await withTimeout(finished, WORKFLOW_TIMEOUT_MS, `workflow did not finish within ${WORKFLOW_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 300));
    const result = await gql(url, `query($id: ID!) { workflow(id: $id) { state tasks { runs { node { id } state exitCode result usage { wallMs cpuUserMs cpuSystemMs peakRssBytes logBytes } } } } }`, { id: workflowId });
    say("\nrun usage:");
    say(`  ${"node".padEnd(12)}${"state".padEnd(11)}${"exit".padEnd(6)}${"wall ms".padEnd(10)}${"cpu ms".padEnd(9)}${"peak MiB".padEnd(10)}${"log bytes".padEnd(11)}result`);
    let totalSum = 0;
    let totalCount = 0;
    for (const r of result.workflow.tasks[0].runs) {
      const u = r.usage;
      const cpu = (u.cpuUserMs ?? 0) + (u.cpuSystemMs ?? 0);
      say(`  ${r.node.id.padEnd(12)}${r.state.padEnd(11)}${String(r.exitCode).padEnd(6)}${String(Math.round(u.wallMs ?? 0)).padEnd(10)}${String(Math.round(cpu)).padEnd(9)}${((u.peakRssBytes ?? 0) / 1048576).toFixed(1).padEnd(10)}${String(u.logBytes ?? 0).padEnd(11)}${JSON.stringify(r.result)}`);
      totalSum += r.result?.sum ?? 0;
      totalCount += r.result?.count ?? 0;
    }
    const usage = await gql(url, `query($id: ID!) { accounting(groupBy: [TOOL], filter: { workflowId: $id }) { tool runs succeeded wallMs cpuUserMs cpuSystemMs logBytes } }`, { id: workflowId });
    for (const row of usage.accounting) {
      say(`\naccounting for ${row.tool}: ${row.runs} runs, ${row.succeeded} succeeded, ${Math.round(row.wallMs)} ms wall, ${Math.round(row.cpuUserMs + row.cpuSystemMs)} ms CPU, ${row.logBytes} log bytes`);
    }
    if (totalCount > 0) say(`\nfederated mean over ${totalCount} values on ${NODES.length} nodes: ${(totalSum / totalCount).toFixed(3)} (no value left its node)`);
    say(`\nworkflow ${state}. GraphQL API: ${url} (stopped now; run \`npm start\` to keep one up)`);
    say(`Every call needs a token: Authorization: Bearer <token> (see README, Security). The demo's token died with it.`);
    return state === "SUCCEEDED" ? 0 : 1;
  } catch (err) {
    if (err instanceof ServiceUnreachableError) console.error(`fem demo: ${err.message}`);
    else console.error(`fem demo failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await client?.dispose();
    await Promise.all(agents.map(stopAgent));
    await orchestrator?.stop();
    rmSync(sandboxRoot, { recursive: true, force: true });
  }
}

process.exit(await main());
