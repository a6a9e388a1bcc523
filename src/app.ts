/**
 * Wires one orchestrator instance: database, broker, outbox relay, ingestion, heartbeat sweep,
 * live events and the GraphQL server. `stop()` tears them down in order and is safe to call twice.
 */
import { randomUUID } from "node:crypto";
import type { Orm } from "./db/orm.js";
import { migrate } from "./db/orm.js";
import { connectDatabase } from "./db/connect.js";
import { rabbitmqUnreachable, ServiceUnreachableError } from "./unreachable.js";
import type { OrchestratorConfig } from "./config.js";
import { createAfterCommit } from "./after-commit.js";
import { createRunStatistics } from "./db/statistics.js";
import { amqpUrlsOf, readAmqpTls, toError, withTimeout, type AmqpTls } from "./shared/index.js";
import { createAuthenticator, ensureBootstrapAdminToken, hasUsableApiToken } from "./auth/index.js";
import { AuditOutcome, recordAuditEvent } from "./audit/index.js";
import { createDeadLetterConsumer, type DeadLetterConsumer } from "./dead-letters/index.js";
import { createSchema } from "./graphql/schema.js";
import { startGraphQLServer } from "./graphql/server.js";
import { DEFAULT_DASHBOARD_DIR } from "./graphql/dashboard.js";
import { createChunkIngestion, createIngestion, type Ingestion } from "./ingestion/index.js";
import { ARTIFACTS_PATH, askForStalledTransfers, createDirectoryStore, createInputServer, type InputServer, expireArtifacts, serveArtifact, type ArtifactStore } from "./artifacts/index.js";
import { LOCAL_DEVELOPER } from "./graphql/context.js";
import { recordAuthEvent, type RecordMutation } from "./graphql/audit-plugin.js";
import { createLoop } from "./loop.js";
import { ChangeSet } from "./kernel/index.js";
import { createLiveEvents } from "./live/live-events.js";
import { createPubSub, type PubSub } from "./live/pubsub.js";
import type { Logger } from "./logger.js";
import { createOrchestratorMetrics, type OrchestratorMetrics } from "./metrics/orchestrator-metrics.js";
import { createProbeRoutes } from "./metrics/probes.js";
import { createBroker, type Broker } from "./messaging/broker.js";
import { createBrokerUsers } from "./messaging/broker-users.js";
import { createDispatchPublisher } from "./messaging/dispatch-publisher.js";
import { query } from "./db/sql.js";
import { orchestratorConnectionName } from "./messaging/topology.js";
import { createOutboxPruner, createRelay, markUnsent, type Relay } from "./messaging/relay.js";
import { createInlineSigner, createWorkerSignerPool } from "./messaging/payload-signer.js";
import type { RunInputChunk } from "./messaging/contracts.js";
import { loadOrCreateSigningKey } from "./messaging/signing-key.js";
import { createNodeSweeper } from "./nodes/index.js";
import { createScheduler } from "./runs/index.js";

export interface Orchestrator {
  url: string;
  wsUrl: string;
  orm: Orm;
  pubsub: PubSub;
  relay: Relay;
  ingestion: Ingestion;
  deadLetters: DeadLetterConsumer;
  /** This instance's Prometheus metrics (also served at `GET /metrics`). */
  metrics: OrchestratorMetrics;
  /** SPKI PEM of the key that signs dispatches and cancels. */
  publicKeyPem: string;
  artifactStore: ArtifactStore;
  /** Answers nodes' requests for the input files of their runs. */
  inputServer: InputServer;
  stop(): Promise<void>;
}

async function connectBroker(config: OrchestratorConfig, tls: AmqpTls, logger: Logger): Promise<Broker> {
  const options = { amqpUrl: config.amqpUrl, amqpFailoverUrls: config.amqpFailoverUrls, tls, instanceId: config.instanceId, ingestPrefetch: config.ingestPrefetch, heartbeatSeconds: config.amqpHeartbeatSeconds };
  try {
    return await withTimeout(createBroker(options, logger), 15_000, "connecting to RabbitMQ timed out");
  } catch (err) {
    throw rabbitmqUnreachable(amqpUrlsOf(config), err);
  }
}

/** Authentication is on but no way to sign in is configured. */
export class AuthNotConfiguredError extends Error {
  constructor() {
    super(
      "no identity is configured: set FEM_OIDC_ISSUER and FEM_OIDC_AUDIENCE, or FEM_BOOTSTRAP_ADMIN_TOKEN (or _FILE) for a first admin token; for local development only, FEM_AUTH=off",
    );
    this.name = "AuthNotConfiguredError";
  }
}

export interface OrchestratorHooks {
  /** Sees every SQL statement (tests count them). */
  onQuery?: (message: string) => void;
  /** Sees every chunk of an input file before it is published to a node, and may replace it (tests alter one). */
  onInputChunk?: (chunk: RunInputChunk) => RunInputChunk;
}

export async function createOrchestrator(config: OrchestratorConfig, logger: Logger, hooks: OrchestratorHooks = {}): Promise<Orchestrator> {
  const teardown: { name: string; run: () => Promise<void> }[] = [];
  const onStop = (name: string, run: () => Promise<void>) => teardown.unshift({ name, run });
  async function stop(): Promise<void> {
    while (teardown.length > 0) {
      const step = teardown.shift()!;
      await step.run().catch((err: unknown) => logger.warn("shutdown step failed", { step: step.name, error: toError(err).message }));
    }
  }

  try {
    // Read first, so that a missing or unusable file is the one line a failed start prints.
    const amqpTls = await readAmqpTls(config.amqpTls);
    const orm = await connectDatabase({
      databaseUrl: config.databaseUrl,
      poolSize: config.databasePoolSize,
      idleInTransactionTimeoutMs: config.idleInTransactionTimeoutMs,
      onQuery: hooks.onQuery,
    });
    onStop("database", () => orm.close(true));
    if (config.migrateOnStart) {
      const applied = await migrate(orm);
      if (applied.length > 0) logger.info("applied migrations", { applied });
    }
    if (config.bootstrapAdminToken) {
      const { record, created } = await ensureBootstrapAdminToken(orm.em.fork(), config.bootstrapAdminToken);
      logger.info(created ? "created the bootstrap admin token" : "the bootstrap admin token exists", { prefix: record.prefix, revoked: record.revokedAt !== null });
    }
    const authenticator = createAuthenticator(
      orm,
      config.oidc && {
        issuerUrl: config.oidc.issuerUrl,
        audience: config.oidc.audience,
        rolesClaim: config.oidc.rolesClaim ?? undefined,
        userClaim: config.oidc.subjectClaim,
        nameClaim: config.oidc.nameClaim,
        emailClaim: config.oidc.emailClaim,
      },
      logger,
    );
    onStop("authenticator", async () => authenticator.stop());
    const metrics = createOrchestratorMetrics(orm, { poolMax: orm.config.get("pool")?.max ?? 10 }, logger);
    const broker = await connectBroker(config, amqpTls, logger);
    onStop("broker", () => broker.stop());
    metrics.sources.brokerConnected = () => broker.isConnected();
    const brokerUsers = createBrokerUsers({
      amqpUrl: config.amqpUrl,
      amqpFailoverUrls: config.amqpFailoverUrls,
      managementUrl: config.brokerManagementUrl,
      managementFailoverUrls: config.brokerManagementFailoverUrls,
    });
    await brokerUsers.check().catch((err: unknown) => {
      throw new ServiceUnreachableError(toError(err).message, { cause: err });
    });
    // After both services answered, so a newcomer hears first about the one that is down.
    if (config.auth === "on" && !config.oidc && !config.bootstrapAdminToken && !(await hasUsableApiToken(orm.em.fork()))) {
      throw new AuthNotConfiguredError();
    }
    let relay: Relay | null = null;
    const publisher = createDispatchPublisher(
      {
        amqpUrl: config.amqpUrl,
        amqpFailoverUrls: config.amqpFailoverUrls,
        tls: amqpTls,
        publishTimeoutMs: config.publishTimeoutMs,
        heartbeatSeconds: config.amqpHeartbeatSeconds,
        connectionName: orchestratorConnectionName(config.instanceId),
        controlQueueType: config.nodeControlQueueType,
        onReturned: (messageId) => {
          markUnsent(orm, messageId)
            .then(() => relay?.wake())
            .catch((err: unknown) => logger.error("could not re-queue a returned message", { messageId, error: toError(err).message }));
        },
      },
      logger,
    );
    onStop("dispatch publisher", () => publisher.stop());

    const pubsub = createPubSub(config.subscriberBufferSize);
    metrics.sources.liveSubscribers = () => pubsub.totalSubscribers();
    const live = createLiveEvents(config.instanceId, pubsub, broker, logger);
    const signingKey = loadOrCreateSigningKey(config.signingKeyFile);
    logger.info("dispatches are signed; nodes pin this public key (FEM_ORCHESTRATOR_PUBLIC_KEY_FILE)", { keyFile: `${config.signingKeyFile}.pub`, publicKey: signingKey.publicKeyPem });
    // Two workers: signing is the relay's costliest step; each batch is split between them.
    const signer = config.signingWorkers > 0 ? createWorkerSignerPool(signingKey.privateKey, config.signingWorkers) : createInlineSigner(signingKey.privateKey);
    onStop("payload signer", () => signer.stop());
    relay = createRelay(
      orm,
      publisher,
      {
        pollMs: config.relayPollMs,
        batchSize: config.relayBatchSize,
        signer,
        onPublished: metrics.observePublished,
      },
      logger,
    );
    onStop("relay", () => relay.stop());
    // The scheduler is created after the hook that wakes it; the hook reaches it through this variable.
    let scheduler: { wake(): void } | null = null;
    const statistics = createRunStatistics(orm, logger);
    onStop("table statistics", () => statistics.stop());
    const afterCommit = createAfterCommit({
      announce: live.announce,
      wakeRelay: () => relay.wake(),
      wakeScheduler: () => scheduler?.wake(),
      observe: metrics.observeChanges,
      runsCreated: statistics.runsCreated,
    });
    const schedulerLoop = createScheduler(orm, { pollMs: config.schedulerPollMs, batchSize: config.relayBatchSize, maxBatchSize: config.relayBatchSize * 8 }, afterCommit, logger);
    scheduler = schedulerLoop;
    onStop("scheduler", () => schedulerLoop.stop());
    const pruner = createOutboxPruner(orm, { intervalMs: config.heartbeatIntervalMs, retentionMs: config.outboxRetentionMs }, logger);
    onStop("outbox pruning", () => pruner.stop());
    const artifactStore = createDirectoryStore(config.artifactDir);
    // Its own connection: chunks of input files never hold up (or time out) the relay's batches.
    const inputsPublisher = createDispatchPublisher(
      {
        amqpUrl: config.amqpUrl,
        tls: amqpTls,
        publishTimeoutMs: Math.max(config.publishTimeoutMs, 30_000),
        onReturned: (messageId) => logger.warn("an input chunk had no queue to go to; its node will ask again", { messageId }),
      },
      logger,
    );
    onStop("inputs publisher", () => inputsPublisher.stop());
    const inputServer = createInputServer({
      orm,
      store: artifactStore,
      afterCommit,
      logger,
      onChunk: hooks.onInputChunk,
      publish: async (messages) => {
        for (const nodeId of new Set(messages.map((m) => m.payload.nodeId))) await inputsPublisher.ensureNodeQueues(nodeId);
        return inputsPublisher.publishAll(messages);
      },
    });
    onStop("input server", () => inputServer.stop());
    const ingestion = createIngestion({
      orm,
      onFetches: (fetches) => inputServer.serve(fetches),
      store: artifactStore,
      afterCommit,
      logger,
      maxResultBytes: config.maxResultBytes,
      maxEventBytes: config.maxEventBytes,
      maxLogBytesPerRun: config.maxLogBytesPerRun,
      maxBatch: config.ingestPrefetch,
      brokerUserOf: brokerUsers.userOf,
      onBatch: metrics.observeIngestBatch,
    });
    metrics.sources.ingestion = () => ingestion.stats();
    onStop("ingestion", async () => {
      // Stop taking node events first, then finish what was taken.
      await broker.stopConsuming();
      await ingestion.stop(5_000);
    });
    const chunks = createChunkIngestion({ orm, store: artifactStore, afterCommit, logger, brokerUserOf: brokerUsers.userOf });
    onStop("chunk ingestion", () => chunks.stop(5_000));
    await broker.consumeLive((content) => live.receive(content));
    await broker.consumeNodeEvents((delivery) => ingestion.accept(delivery));
    await broker.consumeChunks((delivery) => chunks.accept(delivery));
    // Nodes registered before a queue was added to their set (inputs) get it before their agents check for it.
    for (const { id } of await query<{ id: string }>(orm.em.fork(), `select id from node order by id`)) {
      await publisher.ensureNodeQueues(id).catch((err: unknown) => logger.warn("cannot declare a node's queues", { nodeId: id, error: toError(err).message }));
    }
    const transferWatch = createLoop({
      name: "transfer watch",
      intervalMs: Math.max(100, Math.floor(config.transferStallMs / 2)),
      logger,
      pass: async () => {
        const changes = new ChangeSet();
        const asked = await orm.em.fork().transactional((em) => askForStalledTransfers(em, artifactStore, config.transferStallMs, changes));
        if (config.artifactRetentionMs > 0) await expireArtifacts(orm.em.fork(), artifactStore, config.artifactRetentionMs, changes);
        afterCommit(changes);
        return asked >= 100;
      },
    });
    onStop("transfer watch", () => transferWatch.stop());
    const deadLetters = createDeadLetterConsumer(orm, { retentionMs: config.deadLetterRetentionMs, pruneIntervalMs: config.heartbeatIntervalMs }, logger);
    onStop("dead-letter pruning", () => deadLetters.stop());
    metrics.sources.deadLetters = () => deadLetters.stats();
    await broker.consumeDeadLetters((letter) => deadLetters.handle(letter));

    const sweeper = createNodeSweeper(
      orm,
      {
        intervalMs: config.heartbeatIntervalMs,
        offlineAfterMs: config.heartbeatIntervalMs * config.missedHeartbeats,
        lostAfterMs: config.nodeLostAfterMs,
        unreported: { minHeartbeats: config.unreportedHeartbeats, graceMs: config.unreportedRunGraceMs },
      },
      { afterCommit, logger, runsQueueDepth: (nodeId) => publisher.runsQueueDepth(nodeId) },
    );
    onStop("node sweep", () => sweeper.stop());

    const schema = await createSchema();
    const recordMutation: RecordMutation = async (record) => {
      await recordAuditEvent(orm, { ...record, outcome: AuditOutcome[record.outcome] });
    };
    const server = await startGraphQLServer(
      schema,
      {
        orm,
        pubsub,
        afterCommit,
        authenticator,
        auth: config.auth,
        declareNodeQueues: (nodeId) => publisher.ensureNodeQueues(nodeId),
        removeNodeQueues: (nodeId) => publisher.deleteNodeQueues(nodeId),
        brokerUsers,
        subscriberBufferSize: config.subscriberBufferSize,
        recordMutation,
        maxRunsPerWorkflow: config.maxRunsPerWorkflow,
        orchestratorPublicKeyPem: signingKey.publicKeyPem,
      },
      {
        host: config.host,
        port: config.port,
        maxRequestBytes: config.maxRequestBytes,
        introspection: config.introspection,
        limits: {
          maxDepth: config.maxQueryDepth,
          maxAliases: config.maxQueryAliases,
          maxCost: config.maxQueryCost,
          maxTokens: config.maxQueryTokens,
          mutationsPerMinute: config.mutationsPerMinute,
        },
        allowedOrigins: config.allowedOrigins,
        maxSubscriptionsPerSocket: config.maxSubscriptionsPerSocket,
        maxSocketsPerUser: config.maxSocketsPerUser,
        routes: createProbeRoutes({ orm, brokerConnected: () => broker.isConnected(), metrics, metricsToken: config.metricsToken }, logger),
        dashboardDir: config.dashboard ? (config.dashboardDir ?? DEFAULT_DASHBOARD_DIR) : null,
        dashboardSignIn: config.oidc?.dashboardClientId ? { issuer: config.oidc.issuerUrl, clientId: config.oidc.dashboardClientId, audience: config.oidc.audience } : null,
        prefixRoutes: [
          {
            prefix: ARTIFACTS_PATH,
            handle: (req, res, id) =>
              serveArtifact(req, res, id, {
                orm,
                store: artifactStore,
                authenticate: async (header) => (config.auth === "off" ? LOCAL_DEVELOPER : authenticator.authenticate(header)),
                onUnauthenticated: (reason) =>
                  recordAuthEvent(recordMutation, logger, { actor: "anonymous", action: "auth.denied", outcome: "UNAUTHENTICATED", requestId: randomUUID(), details: { transport: "http", path: ARTIFACTS_PATH, reason } }),
                logger,
              }),
          },
        ],
      },
      logger,
    );
    onStop("graphql server", () => server.stop());
    metrics.sources.webSocketConnections = () => server.webSocketConnections();
    // Subscribers of one document as one viewer share one pubsub subscriber: count each.
    metrics.sources.liveSubscribers = () => pubsub.totalSubscribers() + server.sharedSubscriptions();
    logger.info("orchestrator ready", { url: server.url, instanceId: config.instanceId, auth: config.auth === "off" ? "OFF: every caller is a local ADMIN" : config.oidc ? "OIDC and API tokens" : "API tokens" });
    return { url: server.url, wsUrl: server.wsUrl, orm, pubsub, relay, ingestion, deadLetters, metrics, publicKeyPem: signingKey.publicKeyPem, artifactStore, inputServer, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
