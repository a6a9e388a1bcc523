/**
 * The agent's settings: the only place of the agent that reads `process.env`. Every setting is an
 * environment variable and a flag; flags win, blank values count as unset, and every problem is
 * listed at once.
 */
import path from "node:path";
import { z } from "zod";
import { NODE_ID_PATTERN } from "../messaging/contracts.js";
import { amqpTlsProblems, amqpUrlListProblems, maskUrl, splitUrlList, type AmqpTlsFiles } from "../shared/index.js";

/** Launchers this agent build can run work with. */
export const IMPLEMENTED_LAUNCHERS = ["process", "sandbox", "podman", "docker", "singularity", "apptainer"] as const;

export interface AgentConfig {
  /** Broker URL without a user (the agent connects as its node's own broker user); its path is the vhost. @default "amqp://127.0.0.1:5672" */
  amqpUrl: string;
  /** Other nodes of the same RabbitMQ cluster (the rest of `AMQP_URL`'s list), tried in order when the one before is unreachable or goes away. @default [] */
  amqpFailoverUrls: string[];
  /**
   * CA bundle, client certificate and key of TLS to RabbitMQ (an `amqps://` URL); without a CA,
   * Node's default trust store applies. The key file must be the agent's own (mode 0600 or 0400).
   * @default all null
   */
  amqpTls: AmqpTlsFiles;
  /**
   * Where the node's credential (registerNode's answer, its broker password) comes from: a file
   * only the agent can read (FEM_NODE_CREDENTIAL_FILE), or FEM_NODE_CREDENTIAL. Never a flag, so it
   * is never on the command line.
   */
  credential: { file: string } | { value: string };
  nodeId: string;
  /** Absolute directory holding the journal and one sandbox per run. @default "./fem-sandbox" */
  sandboxDir: string;
  /** Most runs executing at once. @default 2 */
  capacity: number;
  /** @default 5_000 // 5 seconds */
  heartbeatIntervalMs: number;
  /** Longest a log line waits before its batch is sent. @default 100 */
  logBatchMs: number;
  /** Size (JSON bytes) at which a log batch is sent at once. @default 262_144 */
  logBatchBytes: number;
  /** Wait without any chunk of an input file before asking again for what is missing. @default 15_000 // 15 seconds */
  inputStallMs: number;
  /** Time between SIGTERM and SIGKILL on timeout, cancel and shutdown. @default 5_000 */
  killGraceMs: number;
  /** Time a shutdown waits for active runs before cancelling them. @default 30_000 */
  shutdownGraceMs: number;
  /** On SIGTERM: `finish` waits up to shutdownGraceMs, then cancels; `handback` stops at once and reports runs NODE_LOST so they are retried. @default "finish" */
  shutdownMode: "finish" | "handback";
  /** Run directories older than this are deleted; 0 keeps them forever. @default 604_800_000 // 7 days */
  sandboxRetentionMs: number;
  /** @default ["process"] */
  launchers: string[];
  /** uid `sandbox` runs execute as when the agent is root, and container runs always. @default 65534 */
  runAsUid: number;
  /** gid `sandbox` runs execute as when the agent is root, and container runs always. @default 65534 */
  runAsGid: number;
  /** Memory of one `sandbox` run, in MiB; 0 for no limit. @default 0 */
  runMemoryMiB: number;
  /** Processes of one `sandbox` run; 0 for no limit. @default 0 */
  runPidsMax: number;
  /** Largest file, and most the directory holds, of one `sandbox` run, in MiB; 0 for no limit. @default 0 */
  runDiskMiB: number;
  /** CPU time of each process of one `sandbox` run, in seconds; 0 for no limit. @default 0 */
  runCpuSeconds: number;
  /** CPUs one container run may use at once (fractions allowed); 0 for no limit. @default 0 */
  runCpus: number;
  /** OCI runtime podman runs containers with (`podman --runtime`); null leaves podman's own setting. @default null */
  podmanRuntime: string | null;
  /** `name` or `name@version` entries; empty means every tool is allowed. @default [] */
  allowedTools: string[];
  /** YAML or JSON file pinning the tools this node runs by name[@version] and digest; null keeps the FEM_ALLOWED_TOOLS check only. @default null */
  policyFile: string | null;
  /** YAML or JSON file of `NAME: value` secrets that tools reference as `${secret:NAME}`; mode 0600 or 0400. @default null */
  secretsFile: string | null;
  /** Directories searched for an `argv[0]` without a slash (the agent's own PATH). */
  executableSearchPath: string[];
  /** PEM file of the orchestrator public key(s) dispatches must be signed with (several while a key rotates). @default null */
  orchestratorPublicKeyFile: string | null;
  /** Runs unsigned dispatches when no key is pinned (tests and demos only). @default false */
  allowUnsigned: boolean;
  /** Oldest signed message accepted, by its issue time. @default 86_400_000 // 1 day */
  maxMessageAgeMs: number;
  /** Port of the agent's Prometheus metrics (`GET /metrics`); null serves none. @default null */
  metricsPort: number | null;
  /** Address the metrics port listens on. @default "127.0.0.1" */
  metricsHost: string;
}

export type ParsedAgentConfig = { ok: true; config: AgentConfig } | { ok: false; problems: string[] };

interface Setting {
  env: string;
  flag: string;
  describe: string;
}

const SETTINGS = {
  amqpUrl: {
    env: "AMQP_URL",
    flag: "--amqp-url",
    describe: "broker URL without a user, the path is the vhost; several nodes of one cluster comma-separated, tried in order (default amqp://127.0.0.1:5672)",
  },
  amqpCaFile: { env: "FEM_AMQP_CA_FILE", flag: "--amqp-ca-file", describe: "PEM CA bundle the broker's TLS certificate must chain to, amqps:// only (default: Node's trusted CAs)" },
  amqpCertFile: { env: "FEM_AMQP_CERT_FILE", flag: "--amqp-cert-file", describe: "PEM client certificate for mutual TLS, with --amqp-key-file (default: none)" },
  amqpKeyFile: { env: "FEM_AMQP_KEY_FILE", flag: "--amqp-key-file", describe: "PEM key of the client certificate, mode 0600 (default: none)" },
  nodeId: { env: "FEM_NODE_ID", flag: "--node-id", describe: "this node's id (required)" },
  sandboxDir: { env: "FEM_SANDBOX_DIR", flag: "--sandbox-dir", describe: "journal, run sandboxes and log spools (default ./fem-sandbox)" },
  capacity: { env: "FEM_CAPACITY", flag: "--capacity", describe: "most concurrent runs (default 2)" },
  heartbeatIntervalMs: { env: "FEM_HEARTBEAT_INTERVAL_MS", flag: "--heartbeat-interval-ms", describe: "default 5000" },
  logBatchMs: { env: "FEM_LOG_BATCH_MS", flag: "--log-batch-ms", describe: "default 100" },
  logBatchBytes: { env: "FEM_LOG_BATCH_BYTES", flag: "--log-batch-bytes", describe: "default 262144" },
  inputStallMs: { env: "FEM_INPUT_STALL_MS", flag: "--input-stall-ms", describe: "wait for a chunk of an input file before asking again (default 15000)" },
  killGraceMs: { env: "FEM_KILL_GRACE_MS", flag: "--kill-grace-ms", describe: "SIGTERM to SIGKILL delay (default 5000)" },
  shutdownGraceMs: { env: "FEM_SHUTDOWN_GRACE_MS", flag: "--shutdown-grace-ms", describe: "wait for runs on shutdown (default 30000)" },
  shutdownMode: { env: "FEM_SHUTDOWN_MODE", flag: "--shutdown-mode", describe: "finish (wait, then cancel) or handback (stop, runs retried) (default finish)" },
  launchers: { env: "FEM_LAUNCHERS", flag: "--launchers", describe: "comma list of process, sandbox, podman, docker, singularity, apptainer (default process)" },
  runAsUid: { env: "FEM_RUN_AS_UID", flag: "--run-as-uid", describe: "uid of sandbox runs when the agent is root, and of container runs (default 65534)" },
  runAsGid: { env: "FEM_RUN_AS_GID", flag: "--run-as-gid", describe: "gid of sandbox runs when the agent is root, and of container runs (default 65534)" },
  runMemoryMiB: { env: "FEM_RUN_MEMORY_MIB", flag: "--run-memory-mib", describe: "memory limit of a sandbox run, 0 none (default 0)" },
  runPidsMax: { env: "FEM_RUN_PIDS_MAX", flag: "--run-pids-max", describe: "process limit of a sandbox run, 0 none (default 0)" },
  runDiskMiB: { env: "FEM_RUN_DISK_MIB", flag: "--run-disk-mib", describe: "disk limit of a sandbox run, 0 none (default 0)" },
  runCpuSeconds: { env: "FEM_RUN_CPU_SECONDS", flag: "--run-cpu-seconds", describe: "CPU time limit per process of a sandbox run, 0 none (default 0)" },
  runCpus: { env: "FEM_RUN_CPUS", flag: "--run-cpus", describe: "CPUs a container run may use at once, e.g. 0.5 or 2; 0 none (default 0)" },
  podmanRuntime: { env: "FEM_PODMAN_RUNTIME", flag: "--podman-runtime", describe: "OCI runtime of podman runs, e.g. runc (default: podman's own setting)" },
  sandboxRetentionMs: { env: "FEM_SANDBOX_RETENTION_MS", flag: "--sandbox-retention-ms", describe: "delete run directories and log spools older than this; 0 keeps them (default 604800000, 7 days)" },
  allowedTools: { env: "FEM_ALLOWED_TOOLS", flag: "--allowed-tools", describe: "comma list of name or name@version (default: all)" },
  policyFile: {
    env: "FEM_POLICY_FILE",
    flag: "--policy-file",
    describe: "YAML or JSON file of the tools this node runs, pinned by name[@version] and digest, and who releases outputs (default: none, FEM_ALLOWED_TOOLS decides; outputs: review)",
  },
  secretsFile: {
    env: "FEM_SECRETS_FILE",
    flag: "--secrets-file",
    describe: "YAML or JSON file (mode 0600) of NAME: value secrets that tools reference as ${secret:NAME} (default: none)",
  },
  orchestratorPublicKeyFile: {
    env: "FEM_ORCHESTRATOR_PUBLIC_KEY_FILE",
    flag: "--orchestrator-public-key-file",
    describe: "PEM file with the orchestrator public key(s) dispatches must be signed with (required unless FEM_ALLOW_UNSIGNED=true)",
  },
  allowUnsigned: { env: "FEM_ALLOW_UNSIGNED", flag: "--allow-unsigned", describe: "true runs unsigned dispatches when no key is pinned: tests and demos only (default false)" },
  maxMessageAgeMs: { env: "FEM_MAX_MESSAGE_AGE_MS", flag: "--max-message-age-ms", describe: "refuse signed messages issued longer ago (default 86400000, 1 day)" },
  metricsPort: { env: "FEM_AGENT_METRICS_PORT", flag: "--metrics-port", describe: "serve Prometheus metrics at http://HOST:PORT/metrics (default: none)" },
  metricsHost: { env: "FEM_AGENT_METRICS_HOST", flag: "--metrics-host", describe: "address of the metrics port (default 127.0.0.1)" },
} satisfies Record<string, Setting>;

type SettingName = keyof typeof SETTINGS;

/** How a problem names the setting: both ways of giving it. */
function label(name: SettingName): string {
  return `${SETTINGS[name].env} / ${SETTINGS[name].flag}`;
}

/** A whole number from `min` to `max`, written with digits only. */
function integer(name: SettingName, min: number, max: number) {
  return z
    .string()
    .refine((value) => /^\d+$/.test(value) && Number.isSafeInteger(Number(value)) && Number(value) >= min && Number(value) <= max, {
      error: (issue) => `${label(name)} must be an integer from ${min} to ${max}, got "${String(issue.input)}"`,
    })
    .transform(Number);
}

/** An absolute path, or null when the setting is not given. */
function optionalFile() {
  return z
    .string()
    .transform((file): string | null => path.resolve(file))
    .optional()
    .transform((file) => file ?? null);
}

/** A comma-separated list; empty items are dropped. */
function commaList() {
  return z.string().transform((value) => value.split(",").map((item) => item.trim()).filter((item) => item !== ""));
}

/**
 * Every setting as the text given (or its default, parsed the same way); each message names the
 * setting. Keys are in the order problems are listed.
 */
const settingsSchema = z.object({
  amqpUrl: z
    .string()
    .transform(splitUrlList)
    .superRefine((urls, ctx) => {
      if (urls.length === 0) ctx.addIssue({ code: "custom", message: `${label("amqpUrl")} must be an amqp:// or amqps:// URL, or several, comma-separated` });
      for (const url of urls) {
        const problem = amqpUrlProblem(url);
        if (problem !== null) ctx.addIssue({ code: "custom", message: `${label("amqpUrl")} ${problem}` });
      }
      for (const problem of amqpUrlListProblems(urls)) ctx.addIssue({ code: "custom", message: `${label("amqpUrl")} ${problem}` });
    })
    .prefault("amqp://127.0.0.1:5672"),
  amqpCaFile: optionalFile(),
  amqpCertFile: optionalFile(),
  amqpKeyFile: optionalFile(),
  nodeId: z
    .string({ error: () => `${label("nodeId")} is required` })
    .regex(NODE_ID_PATTERN, { error: (issue) => `${label("nodeId")} must match ${NODE_ID_PATTERN}, got "${String(issue.input)}"` }),
  launchers: commaList()
    .superRefine((launchers, ctx) => {
      for (const launcher of launchers) {
        if ((IMPLEMENTED_LAUNCHERS as readonly string[]).includes(launcher)) continue;
        ctx.addIssue({
          code: "custom",
          message: `${label("launchers")}: launcher "${launcher}" is not available (this agent offers ${IMPLEMENTED_LAUNCHERS.join(", ")})`,
        });
      }
      if (launchers.length === 0) ctx.addIssue({ code: "custom", message: `${label("launchers")} must name at least one launcher` });
    })
    .prefault("process"),
  shutdownMode: z
    .enum(["finish", "handback"], { error: (issue) => `${label("shutdownMode")}: "${String(issue.input)}" is not finish or handback` })
    .prefault("finish"),
  allowedTools: commaList()
    .superRefine((tools, ctx) => {
      for (const tool of tools) {
        if (/^[^@\s]+(@[^@\s]+)?$/.test(tool)) continue;
        ctx.addIssue({ code: "custom", message: `${label("allowedTools")}: "${tool}" is not "name" or "name@version"` });
      }
    })
    .prefault(""),
  sandboxDir: z
    .string()
    .transform((dir) => path.resolve(dir))
    .prefault("./fem-sandbox"),
  capacity: integer("capacity", 1, 1_000).prefault("2"),
  heartbeatIntervalMs: integer("heartbeatIntervalMs", 100, 3_600_000).prefault("5000"),
  logBatchMs: integer("logBatchMs", 1, 60_000).prefault("100"),
  logBatchBytes: integer("logBatchBytes", 1_024, 16 * 1024 * 1024).prefault("262144"),
  inputStallMs: integer("inputStallMs", 100, 3_600_000).prefault("15000"),
  killGraceMs: integer("killGraceMs", 0, 600_000).prefault("5000"),
  sandboxRetentionMs: integer("sandboxRetentionMs", 0, 31_536_000_000).prefault("604800000"),
  shutdownGraceMs: integer("shutdownGraceMs", 0, 86_400_000).prefault("30000"),
  runAsUid: integer("runAsUid", 1, 4_294_967_294).prefault("65534"),
  runAsGid: integer("runAsGid", 1, 4_294_967_294).prefault("65534"),
  runMemoryMiB: integer("runMemoryMiB", 0, 16_777_216).prefault("0"),
  runPidsMax: integer("runPidsMax", 0, 4_194_304).prefault("0"),
  runDiskMiB: integer("runDiskMiB", 0, 1_073_741_824).prefault("0"),
  runCpuSeconds: integer("runCpuSeconds", 0, 31_536_000).prefault("0"),
  runCpus: z
    .string()
    .refine((value) => /^\d{1,4}(\.\d{1,3})?$/.test(value), {
      error: (issue) => `${label("runCpus")} must be a number of CPUs from 0 to 9999 with at most 3 decimals, got "${String(issue.input)}"`,
    })
    .transform(Number)
    .prefault("0"),
  podmanRuntime: z
    .string()
    .regex(/^[A-Za-z0-9_./-]+$/, { error: (issue) => `${label("podmanRuntime")} must be a runtime name or path, got "${String(issue.input)}"` })
    .optional()
    .transform((runtime) => runtime ?? null),
  policyFile: optionalFile(),
  secretsFile: optionalFile(),
  orchestratorPublicKeyFile: optionalFile(),
  allowUnsigned: z
    .enum(["true", "false"], { error: (issue) => `${label("allowUnsigned")}: "${String(issue.input)}" is not true or false` })
    .transform((value) => value === "true")
    .prefault("false"),
  maxMessageAgeMs: integer("maxMessageAgeMs", 1_000, 31_536_000_000).prefault("86400000"),
  metricsPort: integer("metricsPort", 1, 65_535)
    .optional()
    .transform((port) => port ?? null),
  metricsHost: z
    .string()
    .regex(/^[A-Za-z0-9.:[\]-]+$/, { error: (issue) => `${label("metricsHost")} must be a host name or an IP address, got "${String(issue.input)}"` })
    .prefault("127.0.0.1"),
}).superRefine((settings, ctx) => {
  for (const problem of amqpTlsProblems(settings.amqpUrl[0] ?? "", amqpTlsFilesOf(settings))) {
    ctx.addIssue({ code: "custom", message: `${problem.settings.map((s) => label(TLS_SETTING_NAMES[s])).join(", ")} ${problem.message}` });
  }
  if (settings.orchestratorPublicKeyFile === null && !settings.allowUnsigned) {
    ctx.addIssue({ code: "custom", message: `${label("orchestratorPublicKeyFile")} is required: the orchestrator public key that signs dispatches (or ${label("allowUnsigned")} true, for tests and demos only)` });
  }
});

const TLS_SETTING_NAMES = { caFile: "amqpCaFile", certFile: "amqpCertFile", keyFile: "amqpKeyFile" } as const satisfies Record<keyof AmqpTlsFiles, SettingName>;

function amqpTlsFilesOf(settings: { amqpCaFile: string | null; amqpCertFile: string | null; amqpKeyFile: string | null }): AmqpTlsFiles {
  return { caFile: settings.amqpCaFile, certFile: settings.amqpCertFile, keyFile: settings.amqpKeyFile };
}

/** One line per setting, for `--help`. */
export function agentUsage(): string {
  const lines = Object.values(SETTINGS).map((s) => `  ${s.flag.padEnd(24)} ${s.env.padEnd(26)} ${s.describe}`);
  return [
    "usage: fem-agent [flags]   (each flag also an environment variable; flags win; no flag takes a credential)",
    "       fem-agent policy add <name@version> | policy show   (see fem-agent policy --help)",
    "       fem-agent outputs list | approve <runId> | reject <runId>   (see fem-agent outputs --help)",
    ...lines,
  ].join("\n");
}

/**
 * Parses the environment and the command-line arguments (without `node` and the script) into a
 * config, listing every problem found instead of stopping at the first; never throws.
 */
export function parseAgentConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[]): ParsedAgentConfig {
  const { flags, problems } = parseFlags(argv);
  const given: Partial<Record<SettingName, string>> = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const value = (flags.get(SETTINGS[name].flag) ?? env[SETTINGS[name].env])?.trim();
    if (value !== undefined && value !== "") given[name] = value;
  }
  const parsed = settingsSchema.safeParse(given);
  if (!parsed.success) problems.push(...parsed.error.issues.map((issue) => issue.message));
  const credential = credentialSource(env, problems);
  if (!parsed.success || credential === null || problems.length > 0) return { ok: false, problems };
  const executableSearchPath = (env.PATH ?? "").split(path.delimiter).filter((dir) => dir !== "");
  const { amqpCaFile, amqpCertFile, amqpKeyFile, amqpUrl: amqpUrls, ...settings } = parsed.data;
  const amqpTls = amqpTlsFilesOf({ amqpCaFile, amqpCertFile, amqpKeyFile });
  const [amqpUrl = "", ...amqpFailoverUrls] = amqpUrls;
  return { ok: true, config: { ...settings, amqpUrl, amqpFailoverUrls, amqpTls, credential, executableSearchPath } };
}

/** The node credential's source, from the environment only; null (with a problem) when there is none or two. */
function credentialSource(env: Readonly<Record<string, string | undefined>>, problems: string[]): AgentConfig["credential"] | null {
  const file = env.FEM_NODE_CREDENTIAL_FILE?.trim() || undefined;
  const value = env.FEM_NODE_CREDENTIAL?.trim() || undefined;
  if (file !== undefined && value !== undefined) {
    problems.push("FEM_NODE_CREDENTIAL_FILE and FEM_NODE_CREDENTIAL are both set; give the credential one way");
    return null;
  }
  if (file !== undefined) return { file: path.resolve(file) };
  if (value !== undefined) return { value };
  problems.push("FEM_NODE_CREDENTIAL_FILE is required: a file (mode 0600) holding the credential registerNode returned for this node (or FEM_NODE_CREDENTIAL)");
  return null;
}

/** Parses this process's environment and the given command-line arguments. */
export function loadAgentConfig(argv: readonly string[]): ParsedAgentConfig {
  return parseAgentConfig(agentEnvironment(), argv);
}

/** This process's environment, for the `policy` and `outputs` subcommands, which parse their own settings. */
export function agentEnvironment(): Readonly<Record<string, string | undefined>> {
  return process.env;
}

/** `--flag value` and `--flag=value` pairs; an unknown flag or a missing value is a problem. */
function parseFlags(argv: readonly string[]): { flags: Map<string, string>; problems: string[] } {
  const known = new Set(Object.values(SETTINGS).map((s) => s.flag));
  const flags = new Map<string, string>();
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? "";
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    if (!known.has(flag)) {
      problems.push(`unknown argument "${arg}" (see --help)`);
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[i + 1];
    if (eq < 0) i += 1;
    if (value === undefined || (eq < 0 && value.startsWith("--"))) {
      problems.push(`${flag} needs a value`);
      if (eq < 0 && value !== undefined) i -= 1;
      continue;
    }
    flags.set(flag, value);
  }
  return { flags, problems };
}


/** What is wrong with an AMQP URL, as the end of a sentence, or null. */
function amqpUrlProblem(url: string): string | null {
  try {
    const { protocol, username, password } = new URL(url);
    if (protocol !== "amqp:" && protocol !== "amqps:") return `must start with amqp:// or amqps://, got "${maskUrl(url)}"`;
    if (username !== "" || password !== "") {
      return `must not carry a user or password ("${maskUrl(url)}"): the agent connects as its node's own broker user with FEM_NODE_CREDENTIAL_FILE`;
    }
    return null;
  } catch {
    return `is not a valid URL: "${maskUrl(url)}"`;
  }
}
