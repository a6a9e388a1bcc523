/**
 * The wire contract between the orchestrator and `fem-agent`: names of exchanges and queues, and
 * the JSON messages with their schemas. The agent imports this module and nothing else of the
 * server, so it must stay free of ORM, GraphQL and configuration imports.
 *
 * It is one file on purpose, longer than 500 lines: it is the whole wire protocol that a node
 * operator reviews, the one module the agent may import (test/architecture/imports.test.ts names
 * it), and every message's schema sits next to the names, caps and signature it depends on.
 */
import { sign as signBytes, verify as verifyBytes, type KeyObject } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "../shared/canonical-json.js";
import { DIGEST_PATTERN } from "../shared/tool-digest.js";

/** Version carried by every message as `v`; bump it when a message changes incompatibly. */
export const WIRE_VERSION = 1;

export const EXCHANGES = {
  /** Direct exchange: routing key `<nodeId>.run` / `<nodeId>.control` reaches one node's queues. */
  dispatch: "fem.dispatch",
  /** Topic exchange the agents publish to, routing key `node.<nodeId>.<type>`. */
  nodeEvents: "fem.node-events",
  /** Fanout for live events between orchestrator instances (subscriptions). */
  live: "fem.live",
  /** Where rejected and poison messages go. */
  deadLetter: "fem.dead-letter",
} as const;

/** Exchange types; whoever declares an exchange uses these so declarations never conflict. */
export const EXCHANGE_TYPES = {
  [EXCHANGES.dispatch]: "direct",
  [EXCHANGES.nodeEvents]: "topic",
  [EXCHANGES.live]: "fanout",
  [EXCHANGES.deadLetter]: "topic",
} as const;

export const QUEUES = {
  /** Competing-consumer queue of every orchestrator instance. */
  nodeEvents: "fem.orchestrator.node-events",
  /** Chunks of released output files, consumed apart from other node events (larger, written to disk). */
  chunks: "fem.orchestrator.chunks",
  deadLetters: "fem.dead-letters",
} as const;

/** Headers of a dead letter the orchestrator republished itself: why, from which queue, the problem, the original size. */
export const DEAD_LETTER_HEADERS = { reason: "x-fem-reason", queue: "x-fem-queue", problem: "x-fem-problem", sizeBytes: "x-fem-size-bytes" } as const;

/** Deliveries of one message before the broker dead-letters it (quorum queue `x-delivery-limit`). */
export const DELIVERY_LIMIT = 5;

/** Every queue of a node starts with this prefix, so one permission pattern covers them. */
export function nodeQueuePrefix(nodeId: string): string {
  return `fem.node.${nodeId}.`;
}

/**
 * A node's queues: `runs` (dispatches), `control` (cancels, releases, refusals) and `inputs` (chunks
 * of the files its runs take from upstream tasks, apart so a cancel never waits behind them).
 */
export function nodeQueueNames(nodeId: string): { runs: string; control: string; inputs: string } {
  const prefix = nodeQueuePrefix(nodeId);
  return { runs: `${prefix}runs`, control: `${prefix}control`, inputs: `${prefix}inputs` };
}

export type DispatchKind = "run" | "control" | "inputs";

export function dispatchRoutingKey(nodeId: string, kind: DispatchKind): string {
  return `${nodeId}.${kind}`;
}

/** The node a `fem.dispatch` routing key addresses, or null when the key is not one of ours. */
export function nodeOfDispatchRoutingKey(routingKey: string): string | null {
  const match = /^(.+)\.(run|control|inputs)$/.exec(routingKey);
  return match && NODE_ID_PATTERN.test(match[1]) ? match[1] : null;
}

export function nodeEventRoutingKey(nodeId: string, type: string): string {
  return `node.${nodeId}.${type}`;
}

/**
 * A node's own RabbitMQ user on `vhost`: both sides derive it, the orchestrator to provision it and
 * to check each event's `user_id`, the agent to connect and to set `user_id`. RabbitMQ users span
 * vhosts, so a vhost other than `/` is part of the name.
 */
export function nodeBrokerUser(vhost: string, nodeId: string): string {
  return vhost === "/" ? `fem-node.${nodeId}` : `fem-node.${vhost}.${nodeId}`;
}

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The least privilege of a node's broker user (RabbitMQ regular expressions): it configures
 * nothing (the orchestrator declares every queue and binding), reads only its own queues (never
 * `fem.dispatch`: read on an exchange is what allows binding to it), writes only to the node-events
 * exchange, and there only routing keys of its own node.
 */
export function nodeBrokerPermissions(nodeId: string): {
  vhost: { configure: string; write: string; read: string };
  topic: { exchange: string; write: string; read: string };
} {
  return {
    vhost: { configure: "^$", write: `^${escapeRegex(EXCHANGES.nodeEvents)}$`, read: `^${escapeRegex(nodeQueuePrefix(nodeId))}` },
    topic: { exchange: EXCHANGES.nodeEvents, write: `^${escapeRegex(nodeEventRoutingKey(nodeId, ""))}`, read: "^$" },
  };
}

/** Options of durable work queues; the orchestrator and the agent must declare them identically. */
export const durableQueueOptions = {
  durable: true,
  arguments: {
    "x-queue-type": "quorum",
    "x-delivery-limit": DELIVERY_LIMIT,
    "x-dead-letter-exchange": EXCHANGES.deadLetter,
  },
} as const;

/**
 * Options of a node's control queue (cancels, releases). `classic`: a durable classic queue, a
 * fraction of a quorum queue's memory, not replicated and without a delivery limit; acceptable
 * because the orchestrator sends a lost cancel or release again when the node next reports the run
 * (docs/scaling.md).
 */
export function nodeControlQueueOptions(type: "quorum" | "classic"): { durable: true; arguments: Record<string, unknown> } {
  if (type === "quorum") return durableQueueOptions as unknown as { durable: true; arguments: Record<string, unknown> };
  return { durable: true, arguments: { "x-queue-type": "classic", "x-dead-letter-exchange": EXCHANGES.deadLetter } };
}

export const NODE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{1,62}$/;

/** Launchers a dispatch may name; which of them a node offers is the node's own setting. */
export const KNOWN_LAUNCHERS = ["process", "sandbox", "docker", "podman", "singularity", "apptainer"] as const;

/** Launchers that run a container image: a tool naming one of them must give its `image`. */
export const IMAGE_LAUNCHERS: readonly string[] = ["docker", "podman", "singularity", "apptainer"];

/** Limits a launcher can enforce on a run (see `launcherIsolationSchema`); `cpus` is a CPU quota (cgroup `cpu`). */
export const RUN_LIMIT_KINDS = ["memory", "pids", "disk", "cpuTime", "cpus"] as const;
export type RunLimitKind = (typeof RUN_LIMIT_KINDS)[number];

/**
 * What a launcher isolates a run from, as an agent reports it in its heartbeat: `network` "none"
 * (only a private loopback) or "host"; `filesystem` "private" (only the run's directory and
 * read-only system files are visible: `/usr` and the tool, or a container image) or "shared" (the
 * agent user's view); `pidNamespace` (the run sees only its own processes and cannot leave them
 * with `setsid`); `separateUser` (runs under a uid other than the agent's); `killedWithAgent` (the
 * run dies with the agent process); `limits` it enforces.
 */
export const launcherIsolationSchema = z.object({
  network: z.enum(["none", "host"]),
  filesystem: z.enum(["private", "shared"]),
  pidNamespace: z.boolean(),
  separateUser: z.boolean(),
  killedWithAgent: z.boolean(),
  limits: z.array(z.enum(RUN_LIMIT_KINDS)).max(RUN_LIMIT_KINDS.length),
});
export type LauncherIsolation = z.infer<typeof launcherIsolationSchema>;

/**
 * A dataset's name: what a task asks for, the heartbeat reports and the sandbox mounts at
 * `/data/<name>` (and `FEM_DATASET_<NAME>`, hyphens as underscores, gives the path a run sees).
 */
export const DATASET_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Most datasets a node reports and a task names. */
export const MAX_DATASETS = 100;

const datasetName = z.string().regex(DATASET_NAME_PATTERN);

/** A dataset as a node reports it: its name, description and labels, never its path on the node. */
export const datasetInfoSchema = z.object({
  name: datasetName,
  description: z.string().max(1_000).nullable(),
  labels: z.record(z.string().max(100), z.string().max(1_000)).refine((labels) => Object.keys(labels).length <= 50, "at most 50 labels"),
});
export type DatasetInfo = z.infer<typeof datasetInfoSchema>;

/** Largest value of a PostgreSQL `integer`: counters on the wire stay within it. */
const MAX_INT32 = 2_147_483_647;

const nodeId = z.string().regex(NODE_ID_PATTERN);
const uuid = z.string().uuid();
const isoTime = z.string().datetime({ offset: true });
const attempt = z.number().int().min(1).max(MAX_INT32);

export const RUN_STATES = ["PENDING", "QUEUED", "ACCEPTED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"] as const;
export type RunStateName = (typeof RUN_STATES)[number];
export const TERMINAL_STATES: readonly RunStateName[] = ["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"];
export const FAILURE_REASONS = ["EXIT_CODE", "TIMEOUT", "LAUNCH_ERROR", "NODE_LOST", "OUT_OF_MEMORY", "REJECTED_BY_NODE"] as const;
export type FailureReasonName = (typeof FAILURE_REASONS)[number];
export const LOG_STREAMS = ["STDOUT", "STDERR", "SYSTEM"] as const;
export type LogStreamName = (typeof LOG_STREAMS)[number];

export function isTerminal(state: RunStateName): boolean {
  return TERMINAL_STATES.includes(state);
}

/** Largest log line text the agent sends; longer lines are split. */
export const MAX_LOG_LINE_CHARS = 16_384;
/** Most lines in one `run.logs` message. */
export const MAX_LINES_PER_BATCH = 2_000;

// ── orchestrator → agent ────────────────────────────────────────────────────────────────────────

/** Largest node message (dispatch or cancel) an agent parses; a larger one is dead-lettered unread. @default 8_388_608 // 8 MiB */
export const MAX_NODE_MESSAGE_BYTES = 8_388_608;
/** Most argv items of one dispatch. */
export const MAX_ARGV_ITEMS = 4_096;
/** Longest argv item (Linux refuses single arguments over 128 KiB). */
export const MAX_ARG_CHARS = 65_536;
/** Most environment variables of one dispatch. */
export const MAX_ENV_VARS = 1_024;
/** Longest environment variable name. */
export const MAX_ENV_NAME_CHARS = 256;
/** Longest environment variable value. */
export const MAX_ENV_VALUE_CHARS = 65_536;
/** Most upstream results one dispatch carries. */
export const MAX_UPSTREAM_ITEMS = 10_000;
/** Most output globs of one dispatch. */
export const MAX_OUTPUTS = 1_000;
const shortText = z.string().max(1_000);

/**
 * Largest resource amounts a task may request or a node may declare: `cpus` in steps of 0.001
 * (millicpus), `memoryMiB` up to 16 TiB, `gpus`, `diskMiB` up to 1 PiB.
 */
export const RESOURCE_MAXIMA = { cpus: 1_024, memoryMiB: 16_777_216, gpus: 64, diskMiB: 1_073_741_824 } as const;
export type ResourceKind = keyof typeof RESOURCE_MAXIMA;
export const RESOURCE_KINDS = Object.keys(RESOURCE_MAXIMA) as ResourceKind[];

/** What one run requests of its node; an absent amount is not requested. */
export const resourceRequestSchema = z.object({
  cpus: z.number().positive().max(RESOURCE_MAXIMA.cpus).optional(),
  memoryMiB: z.number().int().positive().max(RESOURCE_MAXIMA.memoryMiB).optional(),
  gpus: z.number().int().nonnegative().max(RESOURCE_MAXIMA.gpus).optional(),
  diskMiB: z.number().int().positive().max(RESOURCE_MAXIMA.diskMiB).optional(),
});
export type ResourceRequest = z.infer<typeof resourceRequestSchema>;

/**
 * The orchestrator's signature of a node message: when it was issued, and an Ed25519 signature
 * (base64) of `signedBytes`. Optional in the schema so that an unsigned message can be refused
 * with a reason rather than dropped as malformed.
 */
const signatureFields = {
  issuedAt: isoTime.optional(),
  sig: z.string().max(200).optional(),
};

const toolArgDefinitionSchema = z.object({
  id: shortText,
  type: z.enum(["STRING", "INT", "FLOAT", "BOOLEAN"]),
  default: z.union([z.string().max(MAX_ARG_CHARS), z.number(), z.boolean()]).nullable(),
  position: z.number().int().nonnegative().max(MAX_INT32).nullable(),
  prefix: shortText.nullable(),
  separate: z.boolean(),
  required: z.boolean(),
  allowDash: z.boolean(),
});

/** A tool's definition as `toolDefinition` (src/shared) gives it: what its digest covers. */
export const toolDefinitionSchema = z.object({
  executable: z.string().max(MAX_ARG_CHARS),
  launcher: shortText,
  image: shortText.nullable(),
  args: z.array(toolArgDefinitionSchema).max(MAX_ARGV_ITEMS),
  envKeys: z.array(z.string().max(MAX_ENV_NAME_CHARS)).max(MAX_ENV_VARS),
  /** Env values that reference node secrets (`${secret:NAME}`): the references, never the values. */
  secretEnv: z
    .record(z.string().max(MAX_ENV_NAME_CHARS), z.string().max(MAX_ENV_VALUE_CHARS))
    .refine((env) => Object.keys(env).length <= MAX_ENV_VARS, `at most ${MAX_ENV_VARS} environment variables`)
    .optional(),
  resultFile: shortText.nullable(),
  outputs: z.array(shortText).max(MAX_OUTPUTS),
});

/** Most input files one dispatch names. */
export const MAX_INPUT_FILES = 1_000;
/** Folder of a run's sandbox that holds its input files, as `inputs/<task>/<node>/<path>`. */
export const INPUTS_DIR = "inputs";
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
/** A task key as a path segment: the workflow's key rule, never `.` or `..`. */
const taskKeySegment = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,100}$/)
  .refine((key) => key !== "." && key !== "..", "not a usable folder name");
/** A sandbox-relative path: no empty, `.` or `..` segment, not absolute, no control character or backslash. */
const relativePath = z
  .string()
  .min(1)
  .max(512)
  // eslint-disable-next-line no-control-regex
  .refine((p) => !/[\u0000-\u001f\u007f\\]/.test(p) && !p.startsWith("/") && p.split("/").every((part) => part !== "" && part !== "." && part !== ".."), "not a relative path inside a sandbox");

/** One file a run takes from an upstream task: the artifact, the task and node it came from, its path there, size and sha256. */
export const runInputFileSchema = z.object({
  artifactId: uuid,
  task: taskKeySegment,
  node: nodeId,
  path: relativePath,
  sizeBytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  sha256: sha256Hex,
});
export type RunInputFile = z.infer<typeof runInputFileSchema>;

export const runDispatchSchema = z.object({
  type: z.literal("run.dispatch"),
  v: z.literal(WIRE_VERSION),
  runId: uuid,
  attempt,
  nodeId,
  workflowId: uuid,
  taskId: uuid,
  /**
   * The tool, with its definition and the digest it was registered with. Both optional so that a
   * dispatch queued before they existed still parses; an agent with a policy file refuses it.
   */
  tool: z.object({
    name: shortText.min(1),
    version: shortText.min(1),
    digest: z.string().regex(DIGEST_PATTERN).optional(),
    definition: toolDefinitionSchema.optional(),
  }),
  /** How the node must run it: `process`, or a container launcher with `image`. */
  launcher: shortText.min(1).default("process"),
  image: shortText.nullable().default(null),
  /** Full argv: `argv[0]` is the executable; never passed through a shell. */
  argv: z.array(z.string().max(MAX_ARG_CHARS)).min(1).max(MAX_ARGV_ITEMS),
  /** The only environment the process gets (besides what the agent adds: none). */
  env: z
    .record(z.string().max(MAX_ENV_NAME_CHARS), z.string().max(MAX_ENV_VALUE_CHARS))
    .refine((env) => Object.keys(env).length <= MAX_ENV_VARS, `at most ${MAX_ENV_VARS} environment variables`),
  timeoutSeconds: z.number().int().positive().max(MAX_INT32).nullable(),
  /** Sandbox-relative path of a small JSON file the run may write as its result. */
  resultFile: shortText.nullable(),
  /** Output globs the tool declares (for release later). */
  outputs: z.array(shortText).max(MAX_OUTPUTS),
  /**
   * Results of the successful runs of the tasks this one depends on. The agent writes them to
   * `INPUTS_FILE` in the run's sandbox before it starts the process.
   */
  upstream: z.array(z.object({ taskKey: shortText, nodeId, runId: uuid, result: z.unknown() })).max(MAX_UPSTREAM_ITEMS).default([]),
  /**
   * What the task requests of the node; the agent's launcher turns it into the run's limits. Absent
   * when the task requests nothing, so such dispatches still verify on agents older than the field
   * (an older agent drops a field it does not know before it checks the signature, and so refuses
   * a dispatch that carries one: it could not enforce it anyway).
   */
  resources: resourceRequestSchema.optional(),
  /**
   * Names of the node's datasets the run reads (mounted read-only by the launcher); the node refuses
   * a dispatch naming one it does not have. Absent when the task names none, so that older agents,
   * which drop the field and then fail the signature check, refuse only dispatches that name some.
   */
  datasets: z.array(datasetName).max(MAX_DATASETS).optional(),
  /**
   * The released files of upstream tasks the run takes (the task's `inputs`), each with the sha256
   * the orchestrator stored it with: the agent fetches them in checked chunks and places them
   * read-only under `inputs/<task>/<node>/<path>` before the run starts. Absent when none, so older
   * agents (which drop the field and then fail the signature check) refuse only runs that take files.
   */
  inputs: z.array(runInputFileSchema).max(MAX_INPUT_FILES).optional(),
  ...signatureFields,
});
export type RunDispatch = z.infer<typeof runDispatchSchema>;

/**
 * Just enough of a `run.dispatch` to know which run it is, so that a dispatch the full schema
 * refuses (over a cap) can be answered REJECTED_BY_NODE instead of leaving the run queued.
 */
export const runDispatchIdentitySchema = z.object({ type: z.literal("run.dispatch"), runId: uuid, attempt, nodeId });

export const runCancelSchema = z.object({
  type: z.literal("run.cancel"),
  v: z.literal(WIRE_VERSION),
  runId: uuid,
  attempt,
  nodeId,
  reason: z.string().max(1_000),
  ...signatureFields,
});
export type RunCancel = z.infer<typeof runCancelSchema>;

/** Longest sandbox-relative path a manifest lists. */
export const MAX_ARTIFACT_PATH_CHARS = 512;
/** Most files one `run.release` names. */
export const MAX_RELEASE_FILES = 200;
/** Most chunk indices one `run.release` asks for again. */
export const MAX_RESEND_CHUNKS = 10_000;

/**
 * The orchestrator tells a node which released files of a run to send, or which chunks of them to
 * send again (`chunks`; null: the whole file). Under `review` it is how the agent learns of an
 * approval; under `local` the agent sends nothing its own operator did not approve, whatever this says.
 */
export const runReleaseSchema = z.object({
  type: z.literal("run.release"),
  v: z.literal(WIRE_VERSION),
  runId: uuid,
  attempt,
  nodeId,
  files: z
    .array(
      z.object({
        path: z.string().min(1).max(MAX_ARTIFACT_PATH_CHARS),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        chunks: z.array(z.number().int().nonnegative().max(MAX_INT32)).max(MAX_RESEND_CHUNKS).nullable(),
      }),
    )
    .min(1)
    .max(MAX_RELEASE_FILES),
  ...signatureFields,
});
export type RunRelease = z.infer<typeof runReleaseSchema>;

/**
 * Sandbox-relative file holding `{ "upstream": { <taskKey>: [{ nodeId, runId, result }] }, "files":
 * [{ task, node, path, file, sizeBytes, sha256, artifactId }] }`: upstream results and the input files
 * placed under `inputs/`, each with the checksum the agent verified.
 */
export const INPUTS_FILE = "fem-inputs.json";

/**
 * The orchestrator cannot deliver an input file a run asked for (expired, gone from its store, no
 * longer one of the run's inputs): the agent fails the run with `reason` instead of waiting.
 * Signed like a cancel, since it ends a run; it travels on the control queue.
 */
export const runInputRefusedSchema = z.object({
  type: z.literal("run.input.refused"),
  v: z.literal(WIRE_VERSION),
  runId: uuid,
  attempt,
  nodeId,
  artifactId: uuid,
  reason: z.string().max(1_000),
  ...signatureFields,
});
export type RunInputRefused = z.infer<typeof runInputRefusedSchema>;

export const nodeMessageSchema = z.discriminatedUnion("type", [runDispatchSchema, runCancelSchema, runReleaseSchema, runInputRefusedSchema]);
export type NodeMessage = z.infer<typeof nodeMessageSchema>;

/** A node message with where it goes: what the outbox stores and the relay publishes. */
export interface OutgoingNodeMessage<M extends NodeMessage = NodeMessage> {
  exchange: string;
  routingKey: string;
  payload: M;
}

/** Builds the `run.dispatch` message of one run, addressed to its node's run queue. */
export function runDispatchMessage(fields: Omit<RunDispatch, "type" | "v">): OutgoingNodeMessage<RunDispatch> {
  return {
    exchange: EXCHANGES.dispatch,
    routingKey: dispatchRoutingKey(fields.nodeId, "run"),
    payload: { type: "run.dispatch", v: WIRE_VERSION, ...fields },
  };
}

/** Builds the `run.cancel` control message of one run attempt, addressed to its node's control queue. */
export function runCancelMessage(fields: Omit<RunCancel, "type" | "v">): OutgoingNodeMessage<RunCancel> {
  return {
    exchange: EXCHANGES.dispatch,
    routingKey: dispatchRoutingKey(fields.nodeId, "control"),
    payload: { type: "run.cancel", v: WIRE_VERSION, ...fields },
  };
}

/** Builds the `run.input.refused` control message of one run attempt, addressed to its node's control queue. */
export function runInputRefusedMessage(fields: Omit<RunInputRefused, "type" | "v">): OutgoingNodeMessage<RunInputRefused> {
  return {
    exchange: EXCHANGES.dispatch,
    routingKey: dispatchRoutingKey(fields.nodeId, "control"),
    payload: { type: "run.input.refused", v: WIRE_VERSION, ...fields },
  };
}

/** Builds the `run.release` control message of one run attempt, addressed to its node's control queue. */
export function runReleaseMessage(fields: Omit<RunRelease, "type" | "v">): OutgoingNodeMessage<RunRelease> {
  return {
    exchange: EXCHANGES.dispatch,
    routingKey: dispatchRoutingKey(fields.nodeId, "control"),
    payload: { type: "run.release", v: WIRE_VERSION, ...fields },
  };
}

// ── signatures of node messages ─────────────────────────────────────────────────────────────────

/** Prefix of the signed bytes, so a signature of a node message is never valid for anything else. */
const SIGNATURE_CONTEXT = "fem-node-message/v1\n";
/** How far a message's `issuedAt` may lie in the future (clock skew between hosts). @default 300_000 // 5 minutes */
export const MAX_CLOCK_SKEW_MS = 300_000;

/**
 * The bytes the orchestrator signs and the agent verifies: every field of the message but `sig`
 * (for a dispatch: run, attempt, node, tool, launcher, image, argv, env, upstream inputs, resources, datasets,
 * issue time and the rest), as canonical JSON after a fixed prefix.
 */
export function signedBytes(message: NodeMessage): Buffer {
  const { sig: _sig, ...signed } = message;
  return Buffer.from(SIGNATURE_CONTEXT + canonicalJson(signed), "utf8");
}

/** `message` issued at `issuedAt`, signed with the orchestrator's Ed25519 private key. */
export function signNodeMessage<M extends NodeMessage>(message: M, privateKey: KeyObject, issuedAt: Date = new Date()): M {
  const unsigned = { ...message, issuedAt: issuedAt.toISOString(), sig: undefined };
  return { ...unsigned, sig: signBytes(null, signedBytes(unsigned), privateKey).toString("base64") };
}

/**
 * `message` issued at `issuedAt` and signed, as the JSON text to publish: its signed bytes' canonical
 * JSON with `sig` added last, so it is serialised once. `known` as for canonicalJson.
 */
export function signedNodeMessageJson(message: NodeMessage, privateKey: KeyObject, issuedAt: Date = new Date(), known?: ReadonlyMap<object, string>): string {
  const { sig: _sig, ...unsigned } = { ...message, issuedAt: issuedAt.toISOString() };
  const canonical = canonicalJson(unsigned, known);
  const sig = signBytes(null, Buffer.from(SIGNATURE_CONTEXT + canonical, "utf8"), privateKey).toString("base64");
  return `${canonical.slice(0, -1)},"sig":${JSON.stringify(sig)}}`;
}

export interface VerifyOptions {
  /** The orchestrator public keys the node pinned (more than one while a key is rotated). */
  publicKeys: readonly KeyObject[];
  /** Oldest `issuedAt` accepted, as an age. */
  maxAgeMs: number;
  /** @default Date.now() */
  nowMs?: number;
}

/** Whether `message` is signed by one of the pinned keys and fresh; otherwise why not. */
export function verifyNodeMessage(message: NodeMessage, options: VerifyOptions): { ok: true } | { ok: false; reason: string } {
  if (!message.sig || !message.issuedAt) return { ok: false, reason: "unsigned: the message carries no orchestrator signature" };
  const signature = Buffer.from(message.sig, "base64");
  const data = signedBytes(message);
  if (!options.publicKeys.some((key) => verifyBytes(null, data, key, signature))) {
    return { ok: false, reason: "bad signature: not signed by a pinned orchestrator key, or altered after signing" };
  }
  const nowMs = options.nowMs ?? Date.now();
  const ageMs = nowMs - Date.parse(message.issuedAt);
  if (ageMs > options.maxAgeMs) return { ok: false, reason: `expired: issued at ${message.issuedAt}, more than ${options.maxAgeMs} ms ago` };
  if (ageMs < -MAX_CLOCK_SKEW_MS) return { ok: false, reason: `issued in the future (${message.issuedAt})` };
  return { ok: true };
}

// ── agent → orchestrator ────────────────────────────────────────────────────────────────────────

export const usageSchema = z.object({
  wallMs: z.number().nonnegative(),
  cpuUserMs: z.number().nonnegative(),
  cpuSystemMs: z.number().nonnegative(),
  peakRssBytes: z.number().nonnegative(),
  logBytes: z.number().nonnegative(),
  outputBytes: z.number().nonnegative(),
});
export type UsageReport = z.infer<typeof usageSchema>;

/** Who releases a node's outputs (its policy file's `outputs`): `auto` on success, `review` by its operator through the API, `local` only on the node. */
export const OUTPUTS_POLICIES = ["auto", "review", "local"] as const;
export type OutputsPolicy = (typeof OUTPUTS_POLICIES)[number];
/** Most files one manifest lists (refused ones included); past it the rest are only counted. */
export const MAX_MANIFEST_FILES = 200;
/** Longest reason a refused manifest entry gives. */
export const MAX_ARTIFACT_REASON_CHARS = 200;
/** Largest single output file listed for release; a larger one is refused. @default 1_073_741_824 // 1 GiB */
export const MAX_ARTIFACT_BYTES = 1_073_741_824;
/** Largest total of one run's released outputs; a file that would pass it is refused. @default 4_294_967_296 // 4 GiB */
export const MAX_MANIFEST_TOTAL_BYTES = 4_294_967_296;
/**
 * Worst-case JSON size of a manifest at these caps (~320 KB, every character escaped), under the
 * orchestrator's default FEM_MAX_EVENT_BYTES (512 KiB) with the rest of a terminal `run.state`
 * event and a result at the default FEM_MAX_RESULT_BYTES (64 KiB).
 */
export const MAX_MANIFEST_JSON_BYTES = 100 + MAX_MANIFEST_FILES * (MAX_ARTIFACT_PATH_CHARS * 2 + 64 + MAX_ARTIFACT_REASON_CHARS * 2 + 100);

/**
 * One entry of an output manifest: a regular file with its size and sha256 (hex), or, with
 * `refused`, a match (or a glob) that is not released and why: a symbolic link, a path leaving the
 * sandbox, a file over a cap.
 */
export const manifestEntrySchema = z.object({
  path: z.string().min(1).max(MAX_ARTIFACT_PATH_CHARS),
  sizeBytes: z.number().int().nonnegative().nullable(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  refused: z.string().max(MAX_ARTIFACT_REASON_CHARS).nullable(),
});
export type ManifestEntry = z.infer<typeof manifestEntrySchema>;

/** The files of a run's sandbox that match its tool's `outputs` globs, and the node's release policy. */
export const outputManifestSchema = z.object({
  policy: z.enum(OUTPUTS_POLICIES),
  files: z.array(manifestEntrySchema).max(MAX_MANIFEST_FILES),
  /** Matches left out past `MAX_MANIFEST_FILES`. */
  omitted: z.number().int().nonnegative().max(MAX_INT32),
});
export type OutputManifest = z.infer<typeof outputManifestSchema>;

export const runStateEventSchema = z.object({
  type: z.literal("run.state"),
  v: z.literal(WIRE_VERSION),
  nodeId,
  runId: uuid,
  attempt,
  state: z.enum(["ACCEPTED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]),
  at: isoTime,
  exitCode: z.number().int().nullable().optional(),
  failureReason: z.enum(FAILURE_REASONS).nullable().optional(),
  message: z.string().max(4_000).nullable().optional(),
  usage: usageSchema.nullable().optional(),
  /** Parsed content of the run's result file, when it wrote one. */
  result: z.unknown().optional(),
  /** On a terminal state: the run's output files and the node's release policy (older agents send none). */
  outputs: outputManifestSchema.optional(),
});
export type RunStateEvent = z.infer<typeof runStateEventSchema>;

export const logLineSchema = z.object({
  seq: z.number().int().min(1).max(MAX_INT32),
  stream: z.enum(LOG_STREAMS),
  at: isoTime,
  text: z.string().max(MAX_LOG_LINE_CHARS),
});
export type LogLineWire = z.infer<typeof logLineSchema>;

export const runLogsEventSchema = z.object({
  type: z.literal("run.logs"),
  v: z.literal(WIRE_VERSION),
  nodeId,
  runId: uuid,
  attempt,
  lines: z.array(logLineSchema).min(1).max(MAX_LINES_PER_BATCH),
});
export type RunLogsEvent = z.infer<typeof runLogsEventSchema>;

export const healthSchema = z.object({
  cpus: z.number().int().nonnegative(),
  loadAvg1: z.number().nonnegative(),
  memoryTotalBytes: z.number().nonnegative(),
  memoryFreeBytes: z.number().nonnegative(),
  diskFreeBytes: z.number().nonnegative().nullable(),
  gpus: z.number().int().nonnegative(),
  agentVersion: z.string().max(100),
});
export type Health = z.infer<typeof healthSchema>;

const runRefSchema = z.object({ runId: uuid, attempt });

export const heartbeatEventSchema = z.object({
  type: z.literal("node.heartbeat"),
  v: z.literal(WIRE_VERSION),
  nodeId,
  at: isoTime,
  capacity: z.number().int().positive().max(MAX_INT32),
  launchers: z.array(z.string().max(100)).max(20),
  /**
   * The same launchers with the isolation each gives. Optional (older agents send none); one an
   * orchestrator cannot read is dropped rather than refusing the heartbeat.
   */
  launcherDetails: z
    .array(z.object({ name: z.string().max(100), isolation: launcherIsolationSchema }))
    .max(20)
    .optional()
    .catch(undefined),
  health: healthSchema,
  /**
   * The node's datasets (FEM_POLICY_FILE), names and descriptions only. Optional (older agents send
   * none); a list an orchestrator cannot read is dropped, so the node then offers none.
   */
  datasets: z.array(datasetInfoSchema).max(MAX_DATASETS).optional().catch(undefined),
  /** Runs the agent is executing right now. */
  activeRuns: z.array(runRefSchema).max(10_000),
  /**
   * Dispatches delivered to the agent and held un-acked until a slot frees. With `unreportedRuns`,
   * it tells the orchestrator every run the node holds; older agents send neither.
   */
  waitingRuns: z.array(runRefSchema).max(10_000).optional(),
  /** Runs that ended on the node whose terminal report the broker has not confirmed yet. */
  unreportedRuns: z.array(runRefSchema).max(10_000).optional(),
});
export type HeartbeatEvent = z.infer<typeof heartbeatEventSchema>;

export const ARTIFACT_DECISIONS = ["APPROVE", "REJECT"] as const;
export type ArtifactDecisionName = (typeof ARTIFACT_DECISIONS)[number];

/**
 * Release decisions the node's operator took on the node (`fem-agent outputs approve|reject`), for
 * files of one ended run's manifest; `requestId` names the request, so a resent event is recognised.
 */
export const runOutputsEventSchema = z.object({
  type: z.literal("run.outputs"),
  v: z.literal(WIRE_VERSION),
  nodeId,
  runId: uuid,
  attempt,
  at: isoTime,
  requestId: uuid,
  /** Who decided, as the node knows them (the operating-system user). */
  decidedBy: z.string().min(1).max(200),
  decisions: z
    .array(z.object({ path: z.string().min(1).max(MAX_ARTIFACT_PATH_CHARS), decision: z.enum(ARTIFACT_DECISIONS), comment: z.string().max(1_000).nullable() }))
    .min(1)
    .max(MAX_MANIFEST_FILES),
});
export type RunOutputsEvent = z.infer<typeof runOutputsEventSchema>;

/**
 * Bytes of file content in one `run.chunk` (the last chunk of a file holds the rest). 256 KiB:
 * memory stays small while raw confirm publishing is near its plateau (measured in
 * docs/development.md). @default 262_144
 */
export const TRANSFER_CHUNK_BYTES = 262_144;
/** Largest `run.chunk` body the orchestrator reads, whatever FEM_MAX_EVENT_BYTES says: chunks have their own queue and bound. */
export const MAX_CHUNK_EVENT_BYTES = 2 * TRANSFER_CHUNK_BYTES;

/**
 * One chunk of a released output file: bytes `[index × chunkBytes, …)` of `path`, with the sha256
 * of those bytes and of the whole file (as its manifest listed it). Stored once per (artifact,
 * index), whatever order or how often chunks arrive. On the wire the bytes are the message's
 * body, as they are, and everything else is this schema's JSON in the header `RUN_CHUNK_HEADER`:
 * no base64, no JSON parse of a quarter of a megabyte on either side.
 */
export const runChunkHeaderSchema = z.object({
  type: z.literal("run.chunk"),
  v: z.literal(WIRE_VERSION),
  nodeId,
  runId: uuid,
  attempt,
  path: z.string().min(1).max(MAX_ARTIFACT_PATH_CHARS),
  fileSha256: z.string().regex(/^[0-9a-f]{64}$/),
  index: z.number().int().nonnegative().max(MAX_INT32),
  chunkBytes: z.number().int().positive().max(TRANSFER_CHUNK_BYTES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type RunChunkHeader = z.infer<typeof runChunkHeaderSchema>;
/** The AMQP header carrying a chunk's `RunChunkHeader` as JSON. */
export const RUN_CHUNK_HEADER = "fem-chunk";
/** Longest `RUN_CHUNK_HEADER` the orchestrator parses (its fields are bounded well below). */
export const MAX_CHUNK_HEADER_CHARS = 4_096;
export type RunChunkEvent = RunChunkHeader & { data: Buffer };

/** A chunk as it is published: its bytes as the body, the rest as the header. */
export function runChunkWire(event: RunChunkEvent): { body: Buffer; headers: Record<string, string> } {
  const { data, ...header } = event;
  return { body: data, headers: { [RUN_CHUNK_HEADER]: JSON.stringify(header) } };
}

/** Most chunks one `run.fetch` asks for: the agent's window of chunks in flight. */
export const MAX_FETCH_CHUNKS = 64;

/**
 * An agent asks for chunks of one input file of one of its runs (an artifact its dispatch named):
 * the orchestrator answers with `run.input.chunk` messages on the node's inputs queue, or with a
 * signed `run.input.refused`. The agent asks again for what does not arrive, so a lost request or
 * chunk only costs time.
 */
export const runFetchEventSchema = z.object({
  type: z.literal("run.fetch"),
  v: z.literal(WIRE_VERSION),
  nodeId,
  runId: uuid,
  attempt,
  at: isoTime,
  artifactId: uuid,
  chunkBytes: z.number().int().positive().max(TRANSFER_CHUNK_BYTES),
  chunks: z.array(z.number().int().nonnegative().max(MAX_INT32)).min(1).max(MAX_FETCH_CHUNKS),
});
export type RunFetchEvent = z.infer<typeof runFetchEventSchema>;

/**
 * One chunk of an input file, orchestrator → agent on the node's inputs queue: bytes
 * `[index × chunkBytes, …)` of the artifact, base64, with their sha256 and the file's. Not signed:
 * the agent checks each chunk, then the whole file against the sha256 of the signed dispatch.
 */
export const runInputChunkSchema = z.object({
  type: z.literal("run.input.chunk"),
  v: z.literal(WIRE_VERSION),
  nodeId,
  runId: uuid,
  attempt,
  artifactId: uuid,
  fileSha256: sha256Hex,
  index: z.number().int().nonnegative().max(MAX_INT32),
  chunkBytes: z.number().int().positive().max(TRANSFER_CHUNK_BYTES),
  sha256: sha256Hex,
  data: z.string().max(Math.ceil(TRANSFER_CHUNK_BYTES / 3) * 4),
});
export type RunInputChunk = z.infer<typeof runInputChunkSchema>;

/** Builds a `run.input.chunk` message, addressed to its node's inputs queue. */
export function runInputChunkMessage(fields: Omit<RunInputChunk, "type" | "v">): { exchange: string; routingKey: string; payload: RunInputChunk } {
  return { exchange: EXCHANGES.dispatch, routingKey: dispatchRoutingKey(fields.nodeId, "inputs"), payload: { type: "run.input.chunk", v: WIRE_VERSION, ...fields } };
}

/**
 * A released output file cannot be sent: it was deleted or changed on the node after its manifest
 * listed it. The orchestrator marks the artifact FAILED with `reason` (dependents then fail too).
 */
export const runOutputLostEventSchema = z.object({
  type: z.literal("run.output-lost"),
  v: z.literal(WIRE_VERSION),
  nodeId,
  runId: uuid,
  attempt,
  at: isoTime,
  path: z.string().min(1).max(MAX_ARTIFACT_PATH_CHARS),
  fileSha256: sha256Hex,
  reason: z.string().max(MAX_ARTIFACT_REASON_CHARS * 5),
});
export type RunOutputLostEvent = z.infer<typeof runOutputLostEventSchema>;

export const nodeEventSchema = z.discriminatedUnion("type", [
  runStateEventSchema,
  runLogsEventSchema,
  runOutputsEventSchema,
  runFetchEventSchema,
  runOutputLostEventSchema,
  heartbeatEventSchema,
]);
export type NodeEvent = z.infer<typeof nodeEventSchema>;

/** Everything an agent publishes: node events, and chunks of released files (their own queue). */
export type AgentEvent = NodeEvent | RunChunkEvent;

/**
 * Binding keys of the orchestrator's node-events queue: every routing key of up to four words, so
 * every event type (`node.<id>.run.state`, and unknown ones, which ingestion dead-letters) but
 * chunks, whose key has five.
 */
export const NODE_EVENT_BINDING_KEYS = ["node.*", "node.*.*", "node.*.*.*"] as const;
/** Binding key of the orchestrator's chunks queue. */
export const CHUNK_BINDING_KEY = "node.*.run.chunk.bytes";

/** The routing key an agent event must carry (the broker checks the publisher against it): `node.<id>.<type>`, and for chunks `node.<id>.run.chunk.bytes`. */
export function routingKeyOfNodeEvent(event: Pick<AgentEvent, "nodeId" | "type">): string {
  const key = nodeEventRoutingKey(event.nodeId, event.type);
  return event.type === "run.chunk" ? `${key}.bytes` : key;
}

// ── orchestrator instance → orchestrator instances (live events fanout) ────────────────────────

/** Version of live messages between orchestrator instances. */
export const LIVE_VERSION = 1;

const runSnapshotSchema = z.looseObject({
  id: uuid,
  taskId: uuid,
  workflowId: uuid,
  nodeId,
  attempt,
  state: z.enum(RUN_STATES),
  failureReason: z.enum(FAILURE_REASONS).nullable().optional(),
});

/** What one committed transaction changed, sent to every other orchestrator instance. */
export const liveMessageSchema = z.object({
  v: z.literal(LIVE_VERSION),
  origin: z.string().min(1),
  at: isoTime,
  nodes: z.array(z.looseObject({ id: nodeId })),
  runs: z.array(runSnapshotSchema),
  tasks: z.array(z.object({ id: uuid, workflowId: uuid, state: z.enum(RUN_STATES) })),
  workflows: z.array(z.object({ id: uuid, state: z.enum(RUN_STATES), submitted: z.object({ projectId: uuid.nullable() }).optional() })),
  logs: z.array(
    z.object({
      runId: uuid,
      taskId: uuid,
      workflowId: uuid,
      lines: z.array(z.object({ seq: z.number().int().min(1), stream: z.enum(LOG_STREAMS), at: isoTime, text: z.string() })),
    }),
  ),
  /** Runs whose output files changed release state (absent from instances that predate it). */
  outputs: z.array(uuid).default([]),
});
export type LiveMessage = z.infer<typeof liveMessageSchema>;

/** Parses a message body; returns the problems as one readable sentence instead of throwing. */
export function parseMessage<T>(schema: z.ZodType<T>, content: unknown): { ok: true; value: T } | { ok: false; error: string } {
  const result = schema.safeParse(content);
  if (result.success) return { ok: true, value: result.data };
  const error = result.error.issues.map((i) => `${i.path.join(".") || "(message)"}: ${i.message}`).join("; ");
  return { ok: false, error };
}
