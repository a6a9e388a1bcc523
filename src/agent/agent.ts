/**
 * `fem-agent` as a library: wires the journal, the broker, the outbox, the intake, runs and
 * heartbeats, and owns the start-up and shutdown order. `main.ts` is a thin wrapper around it.
 */
import fs from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { connectAgentBroker, type AgentBroker } from "./broker.js";
import { readNodeCredential } from "./credential.js";
import { readPrivateFile } from "./private-file.js";
import { readAmqpTls } from "../shared/index.js";
import type { AgentConfig } from "./config.js";
import { datasetInfos } from "./datasets.js";
import { createHeartbeat } from "./heartbeat.js";
import { createIntake, type Intake } from "./intake.js";
import { createInputFetcher, type InputFetcher } from "./inputs.js";
import { createLaunchers, launcherDetails, nodeRunLimits } from "./launcher-registry.js";
import { DEFAULT_OUTPUTS_POLICY, readPolicy } from "./policy.js";
import { NO_SECRETS, readSecrets } from "./secrets.js";
import { readPinnedKeys, signatureCheck } from "./trust.js";
import { openJournal, unreportedRuns, type Journal } from "./journal.js";
import { createStderrLogger, type AgentLogger } from "./log.js";
import { createAgentMetrics, type AgentMetrics } from "./metrics.js";
import { createOutbox, type Outbox } from "./outbox.js";
import { resendDecisions, watchDecisionRequests } from "./output-decisions.js";
import { recoverPreviousRuns } from "./recovery.js";
import { startRun } from "./run.js";
import { createTransfers, releasedFiles, type Transfers } from "./transfer.js";
import { prepareRunDir, pruneRunDirs } from "./sandbox.js";
import { createProcessTreeSampler, type ProcessTreeSampler } from "./usage.js";

export interface AgentDeps {
  /** @default stderr lines prefixed "fem-agent" */
  log?: AgentLogger;
  /** Bound on the first connection to RabbitMQ. @default 10_000 */
  connectTimeoutMs?: number;
  /** Bound on publishing what is still queued when stopping. @default 10_000 */
  flushTimeoutMs?: number;
}

export interface Agent {
  /** Opens the journal, connects (throws `BrokerConnectError` when RabbitMQ cannot be reached), recovers, then consumes. */
  start(): Promise<void>;
  /**
   * Stops taking work, waits up to `shutdownGraceMs` (default: the config's) for active runs, cancels
   * the rest ("agent shut down"), flushes events and disconnects. Safe to call twice.
   */
  stop(options?: { shutdownGraceMs?: number }): Promise<void>;
  activeRunCount(): number;
  /** SIGKILLs every active run at once, for a forced exit (they are reported NODE_LOST on the next start). */
  abort(): void;
}

interface Started {
  journal: Journal;
  broker: AgentBroker;
  outbox: Outbox;
  sampler: ProcessTreeSampler;
  intake: Intake;
  heartbeat: { stop(): void };
  decisions: { stop(): Promise<void> };
  transfers: Transfers;
  inputs: InputFetcher;
  pruneTimer: NodeJS.Timeout;
}

/** How often old run directories are looked for. */
const PRUNE_INTERVAL_MS = 3_600_000;

export function createAgent(config: AgentConfig, deps: AgentDeps = {}): Agent {
  const log = deps.log ?? createStderrLogger();
  let starting: Promise<Started> | null = null;
  let stopping: Promise<void> | null = null;
  let intake: Intake | null = null;
  const metrics: AgentMetrics | null = config.metricsPort === null ? null : createAgentMetrics(config.sandboxDir);

  async function start(): Promise<Started> {
    // Every file is read before anything is said, so a start that fails prints its one line only.
    const trust = config.orchestratorPublicKeyFile === null ? null : signatureCheck(await readPinnedKeys(config.orchestratorPublicKeyFile), config.maxMessageAgeMs);
    const policy = config.policyFile === null ? null : await readPolicy(config.policyFile);
    const secrets = config.secretsFile === null ? NO_SECRETS : await readSecrets(config.secretsFile);
    const credential = await readNodeCredential(config.credential);
    const amqpTls = await readAmqpTls(config.amqpTls, readPrivateFile);
    if (trust === null) log.warn("no orchestrator key pinned (FEM_ALLOW_UNSIGNED=true): unsigned dispatches will run");
    if (policy?.allowAny) log.warn("the tool policy allows any tool (allow: any); definitions are still checked against their digests");
    if (secrets.size > 0 && (policy === null || policy.allowAny)) {
      log.warn(`${secrets.size} node secret(s) loaded but no tool is pinned (FEM_POLICY_FILE): any tool the orchestrator sends may reference them`);
    }
    const datasets = policy?.datasets ?? [];
    if (datasets.length > 0) {
      log.info(`datasets: ${datasets.map((d) => d.name).join(", ")}`);
      if (config.launchers.includes("process")) log.warn("the process launcher isolates no dataset: its runs may read every dataset of this node (FEM_LAUNCHERS)");
    }
    if (metrics && config.metricsPort !== null) {
      const url = await metrics.listen(config.metricsHost, config.metricsPort).catch((err: unknown) => {
        throw new Error(`cannot serve metrics on ${config.metricsHost}:${config.metricsPort} (FEM_AGENT_METRICS_PORT)`, { cause: err });
      });
      log.info(`metrics at ${url}`);
    }
    const launchers = await createLaunchers(config, { log });
    await fs.mkdir(config.sandboxDir, { recursive: true });
    const journal = await openJournal(config.sandboxDir, { log });
    let broker: AgentBroker;
    // A DISABLED node cannot be told to stop its runs (the orchestrator cut it off the broker): it stops them itself.
    const onCutOff = (reason: string) => {
      const count = intake?.activeCount() ?? 0;
      log.warn(`${reason}; cancelling ${count} active run(s)`);
      intake?.cancelAll("the node was disabled", false);
    };
    try {
      broker = await connectAgentBroker(
        { amqpUrl: config.amqpUrl, amqpFailoverUrls: config.amqpFailoverUrls, tls: amqpTls, nodeId: config.nodeId, credential, capacity: config.capacity, connectTimeoutMs: deps.connectTimeoutMs },
        { log, onCutOff },
      );
    } catch (err) {
      await journal.stop();
      throw err;
    }
    const outbox = createOutbox({ nodeId: config.nodeId }, { publish: broker.publish, log });
    const sampler = createProcessTreeSampler();
    await recoverPreviousRuns(journal, outbox, { nodeId: config.nodeId, sandboxDir: config.sandboxDir, logBatchBytes: config.logBatchBytes }, { log, launchers });
    resendDecisions(journal, outbox);
    const transfers = createTransfers({ nodeId: config.nodeId, sandboxDir: config.sandboxDir }, { journal, outbox, log });
    transfers.resume();
    const inputs = createInputFetcher({ nodeId: config.nodeId, sandboxDir: config.sandboxDir, stallMs: config.inputStallMs }, { outbox, log });
    const decisions = watchDecisionRequests({ nodeId: config.nodeId, sandboxDir: config.sandboxDir }, { journal, outbox, log, onDecided: transfers.onDecided });
    const runSettings = {
      nodeId: config.nodeId,
      sandboxDir: config.sandboxDir,
      killGraceMs: config.killGraceMs,
      logBatchMs: config.logBatchMs,
      logBatchBytes: config.logBatchBytes,
      searchPath: config.executableSearchPath,
      limits: nodeRunLimits(config),
      datasets,
      outputsPolicy: policy?.outputs ?? DEFAULT_OUTPUTS_POLICY,
      logsPolicy: policy?.logs ?? "stream",
    };
    intake = createIntake(
      { nodeId: config.nodeId, capacity: config.capacity, allowedTools: config.allowedTools, policy, secrets, launchers: config.launchers, trust },
      {
        journal,
        outbox,
        log,
        prepareRunDir: (dispatch) => prepareRunDir(config.sandboxDir, dispatch.runId, dispatch.attempt),
        startRun: (dispatch, runDir) => {
          const run = startRun(dispatch, runSettings, { launchers, outbox, journal, sampler, log, secrets, onReported: transfers.onReported, inputs }, runDir);
          if (metrics) {
            metrics.runStarted(dispatch);
            void run.done.then(() => metrics.runFinished());
          }
          return run;
        },
        onRelease: transfers.onRelease,
        onInputRefused: inputs.onRefused,
      },
    );
    const active = intake;
    if (metrics) {
      Object.assign(metrics.sources, {
        activeRuns: () => active.activeCount(),
        waitingRuns: () => active.waitingRuns().length,
        journalRecords: () => journal.records().length,
        outboxPending: () => outbox.size(),
        broker: () => broker.connection(),
      });
    }
    const heartbeat = createHeartbeat(
      {
        nodeId: config.nodeId,
        capacity: config.capacity,
        launchers: config.launchers,
        launcherDetails: launcherDetails(launchers),
        datasets: datasetInfos(datasets),
        sandboxDir: config.sandboxDir,
        intervalMs: config.heartbeatIntervalMs,
      },
      {
        send: (event) => void outbox.send(event),
        // A run whose end is still in the outbox is held: the orchestrator must not think it lost.
        holdings: () => ({ activeRuns: active.activeRuns(), waitingRuns: active.waitingRuns(), unreportedRuns: unreportedRuns(journal) }),
        log,
      },
    );
    const pruneSandboxes = () => {
      if (config.sandboxRetentionMs === 0) return;
      // Runs with released files not yet sent keep their directory: the files are still to leave.
      const sending = journal.records().filter((r) => releasedFiles(r).some((f) => !r.transfers[f.path]?.sent));
      const busy = new Set([...active.activeRuns(), ...sending].map((r) => `${r.runId}-${r.attempt}`));
      pruneRunDirs(config.sandboxDir, config.sandboxRetentionMs, busy).then(
        (removed) => removed > 0 && log.info(`removed ${removed} run director${removed === 1 ? "y" : "ies"} and log spool(s) older than FEM_SANDBOX_RETENTION_MS`),
        () => undefined,
      );
    };
    pruneSandboxes();
    const pruneTimer = setInterval(pruneSandboxes, PRUNE_INTERVAL_MS);
    pruneTimer.unref();
    const started: Started = { journal, broker, outbox, sampler, intake, heartbeat, decisions, transfers, inputs, pruneTimer };
    try {
      // Control first, so a cancel is never stuck behind the runs it targets.
      await broker.consume("control", (delivery) => active.onDelivery("control", delivery));
      await broker.consume("inputs", (delivery) => inputs.onDelivery(delivery));
      await broker.consume("runs", (delivery) => active.onDelivery("runs", delivery));
    } catch (err) {
      await shutdown(started, 0);
      throw new Error("cannot start consuming the node's queues", { cause: err });
    }
    return started;
  }

  async function shutdown(s: Started, shutdownGraceMs: number): Promise<void> {
    s.intake.close();
    const cancellingRuns = s.broker.cancel("runs");
    // Rascal sends basic.cancel from its channel-operation queue on a later tick. Requeueing after
    // it, on the same channel, keeps the broker from redelivering the held messages to us again.
    await delay(100);
    await s.intake.requeueHeld();
    await cancellingRuns;
    const handBack = config.shutdownMode === "handback";
    if (!(await s.intake.waitIdle(handBack ? 0 : shutdownGraceMs))) {
      if (handBack) log.info(`handing back ${s.intake.activeCount()} run(s): they fail as NODE_LOST and are retried per their policy`);
      else log.info(`cancelling ${s.intake.activeCount()} run(s) still active after ${shutdownGraceMs} ms`);
      s.intake.cancelAll(handBack ? "handed back: the node's agent shut down" : "agent shut down", handBack);
      // Cancelled runs need the kill grace, then up to 2 s for their output to close.
      await s.intake.waitIdle(config.killGraceMs + 5_000);
    }
    await s.broker.cancel("control");
    s.inputs.stop();
    await s.broker.cancel("inputs");
    s.heartbeat.stop();
    await s.decisions.stop();
    clearInterval(s.pruneTimer);
    // Before the outbox stops: chunks in flight are confirmed or given up, and the journal says which.
    const stoppingTransfers = s.transfers.stop();
    await s.outbox.stop({ flushTimeoutMs: deps.flushTimeoutMs ?? 10_000 });
    await stoppingTransfers;
    s.sampler.stop();
    await s.broker.stop();
    await s.journal.stop();
  }

  return {
    async start() {
      if (stopping) throw new Error("the agent was stopped");
      starting ??= start();
      await starting;
    },
    stop(options = {}) {
      stopping ??= (async () => {
        if (!starting) return;
        const started = await starting.catch(() => null);
        if (started) await shutdown(started, options.shutdownGraceMs ?? config.shutdownGraceMs);
        await metrics?.stop();
      })();
      return stopping;
    },
    activeRunCount: () => intake?.activeCount() ?? 0,
    abort: () => intake?.abortAll(),
  };
}
