/**
 * The orchestrator's configuration: parsed once from the environment (the only reader of
 * `process.env`), every problem listed at once.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { LogFormat, LogLevel } from "./logger.js";
import { AMQP_TLS_SETTINGS, amqpTlsProblems, amqpUrlListProblems, maskUrl, splitUrlList, type AmqpTlsFiles } from "./shared/index.js";

export interface OrchestratorConfig {
  /** PostgreSQL connection URL. @default postgres://postgres@127.0.0.1:5432/fem */
  databaseUrl: string;
  /** RabbitMQ URL (the first of `AMQP_URL`'s list); its path is the vhost. @default amqp://guest:guest@127.0.0.1:5672 */
  amqpUrl: string;
  /**
   * Other nodes of the same RabbitMQ cluster (the rest of `AMQP_URL`'s list), tried in order when
   * the node before is unreachable or goes away; same vhost and scheme as `amqpUrl`. @default []
   */
  amqpFailoverUrls: string[];
  /**
   * CA, client certificate and key files of TLS to RabbitMQ (an `amqps://` URL), read at start;
   * without a CA file Node's default trust store applies. @default all null
   */
  amqpTls: AmqpTlsFiles;
  /**
   * RabbitMQ's management API, where each node gets its own broker user; null derives
   * `http://<AMQP host>:15672` with the AMQP URL's user (one per URL of `AMQP_URL`). @default null
   */
  brokerManagementUrl: string | null;
  /** Further management API URLs of the cluster (the rest of `FEM_RABBITMQ_MANAGEMENT_URL`'s list), tried when the one before does not answer. @default [] */
  brokerManagementFailoverUrls: string[];
  /** @default 4000 */
  port: number;
  /** @default 127.0.0.1 */
  host: string;
  /** Apply pending migrations at start. @default true */
  migrateOnStart: boolean;
  /** Unique per process; names this instance's live-events queue. */
  instanceId: string;
  /** Expected interval of agent heartbeats. @default 5_000 // 5 seconds */
  heartbeatIntervalMs: number;
  /** Heartbeats a node may miss before it is OFFLINE. @default 3 */
  missedHeartbeats: number;
  /** Poll interval of the outbox relay when nothing wakes it. @default 500 */
  relayPollMs: number;
  /** Poll interval of the scheduler when nothing wakes it (retries with backoff). @default 500 */
  schedulerPollMs: number;
  /** Time without heartbeats after which a node's accepted and running runs fail with NODE_LOST. @default 60_000 */
  nodeLostAfterMs: number;
  /**
   * Heartbeats in a row that a live node must send without listing a dispatched run before the run
   * is settled (ACCEPTED/RUNNING: NODE_LOST; QUEUED: dispatched again). @default 3
   */
  unreportedHeartbeats: number;
  /** Least time a dispatched run must be missing from its live node's heartbeats before it is settled. @default 30_000 // 30 seconds */
  unreportedRunGraceMs: number;
  /** How long published outbox rows are kept before the sweep deletes them. @default 86_400_000 // 1 day */
  outboxRetentionMs: number;
  /** Outbox rows published per relay transaction. @default 500 */
  relayBatchSize: number;
  /** Broker publish confirm timeout. @default 10_000 // 10 seconds */
  publishTimeoutMs: number;
  /** Node events consumed at once (prefetch): what a frozen instance can hold until the broker drops it. @default 200 */
  ingestPrefetch: number;
  /**
   * AMQP heartbeat timeout asked of RabbitMQ: an instance that stops answering (a long pause, a
   * frozen VM) loses its connection, and the broker hands its unacked node events to the other
   * instances, within about this long plus one interval. 0 turns heartbeats off. @default 5
   */
  amqpHeartbeatSeconds: number;
  /** PostgreSQL connections of this instance's pool. @default 10 */
  databasePoolSize: number;
  /** Worker threads that sign dispatches; 0 signs on the main thread (measured faster on 2 cores, ~50 MiB less RSS). */
  signingWorkers: number;
  /**
   * PostgreSQL ends a session of this instance left idle inside a transaction this long (it froze
   * or lost its way), releasing its row and advisory locks (scheduler, relay, audit) for the other
   * instances. Above FEM_PUBLISH_TIMEOUT_MS: the relay waits for confirms inside its transaction. @default 20_000
   */
  idleInTransactionTimeoutMs: number;
  /** Queue type of each node's control queue (cancels, releases); its runs queue is always quorum (docs/scaling.md). @default quorum */
  nodeControlQueueType: "quorum" | "classic";
  /** Events that may stay unread by one subscriber for 5 s (50× that at any moment) before it is cut off. @default 1_000 */
  subscriberBufferSize: number;
  /** Bound on graceful shutdown before forcing exit. @default 15_000 */
  shutdownTimeoutMs: number;
  /** Largest JSON result a run may return. @default 65_536 */
  maxResultBytes: number;
  /** Largest node event accepted, checked before it is parsed; larger ones are dead-lettered `too_large`. @default 524_288 // 512 KiB */
  maxEventBytes: number;
  /** Log text stored per run; past it one SYSTEM line says what was dropped. @default 67_108_864 // 64 MiB */
  maxLogBytesPerRun: number;
  /** How long dead letters are kept before the sweep deletes them. @default 1_209_600_000 // 14 days */
  deadLetterRetentionMs: number;
  /** PKCS#8 PEM file of the Ed25519 key that signs dispatches and cancels; generated there (0600) when absent. @default fem-signing-key.pem */
  signingKeyFile: string;
  /** Largest HTTP request body. @default 1_048_576 */
  maxRequestBytes: number;
  /** Deepest field nesting an operation may have (introspection's `__schema` not counted). @default 12 */
  maxQueryDepth: number;
  /** Most aliased fields in one operation. @default 30 */
  maxQueryAliases: number;
  /** Highest estimated cost of one operation (objects it may resolve, see docs/api.md). @default 25_000 */
  maxQueryCost: number;
  /** Most lexical tokens in one GraphQL document; parsing stops past it. @default 5_000 */
  maxQueryTokens: number;
  /** Mutations (root fields) one caller may run per minute, per instance. @default 600 */
  mutationsPerMinute: number;
  /** Most runs (tasks × target nodes) one workflow may create. @default 20_000 */
  maxRunsPerWorkflow: number;
  /** @default info */
  logLevel: LogLevel;
  /** `json` lines, or `pretty` (coloured, for a terminal; needs pino-pretty). @default "json" */
  logFormat: LogFormat;
  /**
   * Bearer token `GET /metrics` requires; null serves metrics to anyone who can reach the port
   * (their labels carry no identifiers, see docs/operations.md). @default null
   */
  metricsToken: string | null;
  /** An API token (`fem_pat_…`, 32+ characters) made sure to exist with the ADMIN role at start, for the first administrator. @default null // none */
  bootstrapAdminToken: string | null;
  /** `off` lets every caller act as a local ADMIN (local development only). @default "on" */
  auth: "on" | "off";
  /** The site's OpenID Provider, when callers sign in with OIDC access tokens. @default null // API tokens only */
  oidc: OidcSettings | null;
  /** Whether the schema may be introspected (`__schema`, `__type`), on both transports. @default true, false when NODE_ENV=production */
  introspection: boolean;
  /** Origins a browser page may call the API from (WebSocket upgrade and CORS). @default [] // same-origin and non-browser clients only */
  allowedOrigins: string[];
  /** Operations (subscriptions included) in progress at once on one WebSocket. @default 100 */
  maxSubscriptionsPerSocket: number;
  /** Open WebSockets one subject may hold on one instance. @default 20 */
  maxSocketsPerUser: number;
  /** Serve the dashboard at `/` on the API's port. @default true */
  dashboard: boolean;
  /** Where the built dashboard is. @default null // web/dist of this checkout */
  dashboardDir: string | null;
  /** Directory of the artifact store: released output files, and chunks staged while they arrive. @default fem-artifacts */
  artifactDir: string;
  /** Silence after which the node is asked again for a released file's missing chunks. @default 30_000 // 30 seconds */
  transferStallMs: number;
  /** How long an AVAILABLE file is kept before it is deleted (EXPIRED); 0 keeps files. @default 0 */
  artifactRetentionMs: number;
}

export interface OidcSettings {
  issuerUrl: string;
  audience: string;
  /** Dotted path of the claim listing global roles (`realm_access.roles` for Keycloak). @default null // none */
  rolesClaim: string | null;
  /** @default "sub" */
  subjectClaim: string;
  /** @default "name" */
  nameClaim: string;
  /** @default "email" */
  emailClaim: string;
  /** The public client (no secret) the dashboard signs in as, with authorization code and PKCE. @default null // the dashboard takes API tokens only */
  dashboardClientId: string | null;
}

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const int = (min: number) => z.coerce.number().int().min(min);

const schema = z.object({
  DATABASE_URL: z.string().url().default("postgres://postgres@127.0.0.1:5432/fem"),
  AMQP_URL: z
    .string()
    .superRefine((list, ctx) => {
      for (const problem of amqpUrlsProblems(list)) ctx.addIssue({ code: "custom", message: problem });
    })
    .default("amqp://guest:guest@127.0.0.1:5672"),
  FEM_AMQP_CA_FILE: z.string().min(1).optional(),
  FEM_AMQP_CERT_FILE: z.string().min(1).optional(),
  FEM_AMQP_KEY_FILE: z.string().min(1).optional(),
  FEM_RABBITMQ_MANAGEMENT_URL: z
    .string()
    .transform(splitUrlList)
    .pipe(z.array(z.string().regex(/^https?:\/\/[^\s,]+$/, "must be an http:// or https:// URL such as http://127.0.0.1:15672, or several, comma-separated")))
    .optional(),
  PORT: int(0).max(65_535).default(4000),
  HOST: z.string().min(1).default("127.0.0.1"),
  FEM_MIGRATE_ON_START: bool.default(true),
  FEM_INSTANCE_ID: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/).optional(),
  FEM_HEARTBEAT_INTERVAL_MS: int(50).default(5_000),
  FEM_MISSED_HEARTBEATS: int(1).default(3),
  FEM_RELAY_POLL_MS: int(10).default(500),
  FEM_SCHEDULER_POLL_MS: int(10).default(500),
  FEM_NODE_LOST_AFTER_MS: int(100).default(60_000),
  FEM_UNREPORTED_HEARTBEATS: int(1).max(1_000).default(3),
  FEM_UNREPORTED_RUN_GRACE_MS: int(0).default(30_000),
  FEM_OUTBOX_RETENTION_MS: int(0).default(86_400_000),
  FEM_RELAY_BATCH_SIZE: int(1).max(10_000).default(500),
  FEM_PUBLISH_TIMEOUT_MS: int(100).default(10_000),
  FEM_INGEST_PREFETCH: int(1).max(10_000).default(200),
  FEM_AMQP_HEARTBEAT_SECONDS: int(0).max(600).default(5),
  FEM_DB_POOL_SIZE: int(1).max(1_000).default(10),
  FEM_SIGNING_WORKERS: int(0).max(16).default(0),
  FEM_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: int(0).default(20_000),
  FEM_NODE_CONTROL_QUEUE_TYPE: z.enum(["quorum", "classic"]).default("quorum"),
  FEM_SUBSCRIBER_BUFFER_SIZE: int(10).default(1_000),
  FEM_SHUTDOWN_TIMEOUT_MS: int(100).default(15_000),
  FEM_MAX_RESULT_BYTES: int(1).default(65_536),
  FEM_MAX_EVENT_BYTES: int(1_024).max(134_217_728).default(524_288),
  FEM_MAX_LOG_BYTES_PER_RUN: int(1).default(67_108_864),
  FEM_DEAD_LETTER_RETENTION_MS: int(0).default(1_209_600_000),
  FEM_SIGNING_KEY_FILE: z.string().min(1).default("fem-signing-key.pem"),
  FEM_MAX_REQUEST_BYTES: int(1_024).default(1_048_576),
  FEM_MAX_QUERY_DEPTH: int(2).max(1_000).default(12),
  FEM_MAX_QUERY_ALIASES: int(0).default(30),
  FEM_MAX_QUERY_COST: int(1).default(25_000),
  FEM_MAX_QUERY_TOKENS: int(100).default(5_000),
  FEM_MUTATIONS_PER_MINUTE: int(1).default(600),
  FEM_MAX_RUNS_PER_WORKFLOW: int(1).default(20_000),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"]).default("json"),
  // The message never repeats the value: it is a secret.
  FEM_METRICS_TOKEN: z.string().regex(/^[\x21-\x7e]{16,512}$/, "must be 16 to 512 printable characters without spaces").optional(),
  // The message never repeats the value: it is a secret.
  FEM_BOOTSTRAP_ADMIN_TOKEN: z
    .string()
    .regex(/^fem_pat_[A-Za-z0-9_-]{24,504}$/, "must be fem_pat_ followed by 24 to 504 characters of A-Z, a-z, 0-9, _ and -")
    .optional(),
  FEM_AUTH: z.enum(["on", "off"]).default("on"),
  FEM_INTROSPECTION: bool.optional(),
  NODE_ENV: z.string().optional(),
  FEM_OIDC_ISSUER: z.string().url().optional(),
  FEM_OIDC_AUDIENCE: z.string().min(1).optional(),
  FEM_OIDC_ROLES_CLAIM: z.string().regex(/^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/, "a claim name or a dotted path such as realm_access.roles").optional(),
  FEM_OIDC_SUBJECT_CLAIM: z.string().min(1).default("sub"),
  FEM_OIDC_NAME_CLAIM: z.string().min(1).default("name"),
  FEM_OIDC_EMAIL_CLAIM: z.string().min(1).default("email"),
  FEM_OIDC_DASHBOARD_CLIENT_ID: z.string().regex(/^[\x21-\x7e]{1,200}$/, "printable ASCII without spaces, at most 200 characters").optional(),
  FEM_ALLOWED_ORIGINS: z
    .string()
    .transform((v) => v.split(",").map((o) => o.trim()).filter((o) => o !== ""))
    .pipe(z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, "origins are scheme://host[:port], comma-separated")))
    .default([]),
  FEM_MAX_SUBSCRIPTIONS_PER_SOCKET: int(1).max(100_000).default(100),
  FEM_MAX_SOCKETS_PER_USER: int(1).max(100_000).default(20),
  FEM_DASHBOARD: bool.default(true),
  FEM_DASHBOARD_DIR: z.string().min(1).optional(),
  FEM_ARTIFACT_DIR: z.string().min(1).default("fem-artifacts"),
  FEM_TRANSFER_STALL_MS: int(100).default(30_000),
  FEM_ARTIFACT_RETENTION_MS: int(0).default(0),
}).superRefine((e, ctx) => {
  if (Boolean(e.FEM_OIDC_ISSUER) !== Boolean(e.FEM_OIDC_AUDIENCE)) {
    ctx.addIssue({ code: "custom", path: ["FEM_OIDC_AUDIENCE"], message: "FEM_OIDC_ISSUER and FEM_OIDC_AUDIENCE go together" });
  }
  for (const problem of amqpTlsProblems(e.AMQP_URL, amqpTlsFilesOf(e))) {
    ctx.addIssue({ code: "custom", path: [problem.settings.map((s) => AMQP_TLS_SETTINGS[s]).join(", ")], message: problem.message });
  }
});

/** What is wrong with `AMQP_URL`: one URL, or several nodes of one cluster, comma-separated. */
function amqpUrlsProblems(list: string): string[] {
  const urls = splitUrlList(list);
  if (urls.length === 0) return ["must be an amqp:// or amqps:// URL, or several, comma-separated"];
  const problems = urls.filter((url) => !/^amqps?:\/\//i.test(url) || !URL.canParse(url)).map((url) => `"${maskUrl(url)}" must start with amqp:// or amqps://`);
  return [...problems, ...amqpUrlListProblems(urls)];
}

function amqpTlsFilesOf(e: { FEM_AMQP_CA_FILE?: string; FEM_AMQP_CERT_FILE?: string; FEM_AMQP_KEY_FILE?: string }): AmqpTlsFiles {
  return { caFile: e.FEM_AMQP_CA_FILE ?? null, certFile: e.FEM_AMQP_CERT_FILE ?? null, keyFile: e.FEM_AMQP_KEY_FILE ?? null };
}

export type ConfigResult = { ok: true; config: OrchestratorConfig } | { ok: false; problems: string[] };

/** Parses `env` (blank values count as unset); never throws. */
export function parseConfig(env: Record<string, string | undefined>): ConfigResult {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    return { ok: false, problems: result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) };
  }
  const e = result.data;
  const amqpUrls = splitUrlList(e.AMQP_URL);
  return {
    ok: true,
    config: {
      databaseUrl: e.DATABASE_URL,
      amqpUrl: amqpUrls[0]!,
      amqpFailoverUrls: amqpUrls.slice(1),
      amqpTls: amqpTlsFilesOf(e),
      brokerManagementUrl: e.FEM_RABBITMQ_MANAGEMENT_URL?.[0] ?? null,
      brokerManagementFailoverUrls: e.FEM_RABBITMQ_MANAGEMENT_URL?.slice(1) ?? [],
      port: e.PORT,
      host: e.HOST,
      migrateOnStart: e.FEM_MIGRATE_ON_START,
      instanceId: e.FEM_INSTANCE_ID ?? randomUUID(),
      heartbeatIntervalMs: e.FEM_HEARTBEAT_INTERVAL_MS,
      missedHeartbeats: e.FEM_MISSED_HEARTBEATS,
      relayPollMs: e.FEM_RELAY_POLL_MS,
      relayBatchSize: e.FEM_RELAY_BATCH_SIZE,
      outboxRetentionMs: e.FEM_OUTBOX_RETENTION_MS,
      schedulerPollMs: e.FEM_SCHEDULER_POLL_MS,
      nodeLostAfterMs: e.FEM_NODE_LOST_AFTER_MS,
      unreportedHeartbeats: e.FEM_UNREPORTED_HEARTBEATS,
      unreportedRunGraceMs: e.FEM_UNREPORTED_RUN_GRACE_MS,
      publishTimeoutMs: e.FEM_PUBLISH_TIMEOUT_MS,
      ingestPrefetch: e.FEM_INGEST_PREFETCH,
      amqpHeartbeatSeconds: e.FEM_AMQP_HEARTBEAT_SECONDS,
      databasePoolSize: e.FEM_DB_POOL_SIZE,
      signingWorkers: e.FEM_SIGNING_WORKERS,
      idleInTransactionTimeoutMs: e.FEM_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      nodeControlQueueType: e.FEM_NODE_CONTROL_QUEUE_TYPE,
      subscriberBufferSize: e.FEM_SUBSCRIBER_BUFFER_SIZE,
      shutdownTimeoutMs: e.FEM_SHUTDOWN_TIMEOUT_MS,
      maxResultBytes: e.FEM_MAX_RESULT_BYTES,
      maxEventBytes: e.FEM_MAX_EVENT_BYTES,
      maxLogBytesPerRun: e.FEM_MAX_LOG_BYTES_PER_RUN,
      deadLetterRetentionMs: e.FEM_DEAD_LETTER_RETENTION_MS,
      signingKeyFile: e.FEM_SIGNING_KEY_FILE,
      maxRequestBytes: e.FEM_MAX_REQUEST_BYTES,
      maxQueryDepth: e.FEM_MAX_QUERY_DEPTH,
      maxQueryAliases: e.FEM_MAX_QUERY_ALIASES,
      maxQueryCost: e.FEM_MAX_QUERY_COST,
      maxQueryTokens: e.FEM_MAX_QUERY_TOKENS,
      mutationsPerMinute: e.FEM_MUTATIONS_PER_MINUTE,
      maxRunsPerWorkflow: e.FEM_MAX_RUNS_PER_WORKFLOW,
      logLevel: e.LOG_LEVEL,
      logFormat: e.LOG_FORMAT,
      metricsToken: e.FEM_METRICS_TOKEN ?? null,
      bootstrapAdminToken: e.FEM_BOOTSTRAP_ADMIN_TOKEN ?? null,
      auth: e.FEM_AUTH,
      introspection: e.FEM_INTROSPECTION ?? e.NODE_ENV !== "production",
      oidc:
        e.FEM_OIDC_ISSUER && e.FEM_OIDC_AUDIENCE
          ? {
              issuerUrl: e.FEM_OIDC_ISSUER,
              audience: e.FEM_OIDC_AUDIENCE,
              rolesClaim: e.FEM_OIDC_ROLES_CLAIM ?? null,
              subjectClaim: e.FEM_OIDC_SUBJECT_CLAIM,
              nameClaim: e.FEM_OIDC_NAME_CLAIM,
              emailClaim: e.FEM_OIDC_EMAIL_CLAIM,
              dashboardClientId: e.FEM_OIDC_DASHBOARD_CLIENT_ID ?? null,
            }
          : null,
      allowedOrigins: e.FEM_ALLOWED_ORIGINS,
      maxSubscriptionsPerSocket: e.FEM_MAX_SUBSCRIPTIONS_PER_SOCKET,
      maxSocketsPerUser: e.FEM_MAX_SOCKETS_PER_USER,
      dashboard: e.FEM_DASHBOARD,
      dashboardDir: e.FEM_DASHBOARD_DIR ?? null,
      artifactDir: e.FEM_ARTIFACT_DIR,
      transferStallMs: e.FEM_TRANSFER_STALL_MS,
      artifactRetentionMs: e.FEM_ARTIFACT_RETENTION_MS,
    },
  };
}

/**
 * Reads the process environment; `defaults` fill what it leaves unset (used by the demo).
 * `FEM_BOOTSTRAP_ADMIN_TOKEN_FILE` and `FEM_METRICS_TOKEN_FILE` name files holding those tokens (mounted secrets).
 */
export function loadConfig(defaults: Record<string, string> = {}): ConfigResult {
  const env: Record<string, string | undefined> = { ...defaults, ...Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== "")) };
  for (const name of ["FEM_BOOTSTRAP_ADMIN_TOKEN", "FEM_METRICS_TOKEN"]) {
    const file = env[`${name}_FILE`];
    if (!file || env[name]) continue;
    try {
      env[name] = readFileSync(file, "utf8").trim();
    } catch (err) {
      return { ok: false, problems: [`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`] };
    }
  }
  return parseConfig(env);
}
