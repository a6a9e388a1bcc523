import path from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { agentUsage, parseAgentConfig, type AgentConfig } from "../../src/agent/config.js";

const test = suite("agent configuration");

/** A pinned orchestrator key (every agent needs one unless FEM_ALLOW_UNSIGNED=true) and the node's credential file. */
const KEY = { FEM_ORCHESTRATOR_PUBLIC_KEY_FILE: "/etc/fem/orchestrator.pub", FEM_NODE_CREDENTIAL_FILE: "/etc/fem/node.credential" };

function expectConfig(env: Record<string, string | undefined>, argv: string[] = []): AgentConfig {
  const result = parseAgentConfig({ ...KEY, ...env }, argv);
  if (!result.ok) throw new Error(`expected a config, got problems:\n${result.problems.join("\n")}`);
  return result.config;
}

function expectProblems(env: Record<string, string | undefined>, argv: string[] = []): string[] {
  const result = parseAgentConfig({ ...KEY, ...env }, argv);
  if (result.ok) throw new Error("expected problems, got a config");
  return result.problems;
}

test("uses the defaults when only the node id is set", () => {
  const config = expectConfig({ FEM_NODE_ID: "site-a", PATH: "/usr/local/bin::/usr/bin" });
  assert.equal(config, {
    amqpUrl: "amqp://127.0.0.1:5672",
    amqpFailoverUrls: [],
    amqpTls: { caFile: null, certFile: null, keyFile: null },
    credential: { file: "/etc/fem/node.credential" },
    nodeId: "site-a",
    sandboxDir: path.resolve("./fem-sandbox"),
    capacity: 2,
    heartbeatIntervalMs: 5_000,
    logBatchMs: 100,
    logBatchBytes: 262_144,
    killGraceMs: 5_000,
    shutdownGraceMs: 30_000,
    shutdownMode: "finish",
    sandboxRetentionMs: 604_800_000,
    launchers: ["process"],
    runAsUid: 65534,
    runAsGid: 65534,
    runMemoryMiB: 0,
    runPidsMax: 0,
    runDiskMiB: 0,
    runCpuSeconds: 0,
    runCpus: 0,
    podmanRuntime: null,
    allowedTools: [],
    policyFile: null,
    secretsFile: null,
    executableSearchPath: ["/usr/local/bin", "/usr/bin"],
    orchestratorPublicKeyFile: "/etc/fem/orchestrator.pub",
    allowUnsigned: false,
    maxMessageAgeMs: 86_400_000,
    metricsPort: null,
    metricsHost: "127.0.0.1",
    inputStallMs: 15_000,
  });
});

test("serves metrics only when FEM_AGENT_METRICS_PORT is set, on loopback unless told otherwise", () => {
  const config = expectConfig({ FEM_NODE_ID: "site-a", FEM_AGENT_METRICS_PORT: "9464" });
  assert.is(config.metricsPort, 9464);
  assert.is(config.metricsHost, "127.0.0.1");
  assert.is(expectConfig({ FEM_NODE_ID: "site-a" }, ["--metrics-port", "9100", "--metrics-host", "0.0.0.0"]).metricsHost, "0.0.0.0");
  assert.ok(expectProblems({ FEM_NODE_ID: "site-a", FEM_AGENT_METRICS_PORT: "70000" }).some((p) => /FEM_AGENT_METRICS_PORT/.test(p)));
});

test("reads every setting from the environment", () => {
  const config = expectConfig({
    AMQP_URL: "amqps://broker.example:5671/fem",
    FEM_NODE_ID: "site-b",
    FEM_SANDBOX_DIR: "/var/lib/fem",
    FEM_CAPACITY: "8",
    FEM_HEARTBEAT_INTERVAL_MS: "1000",
    FEM_LOG_BATCH_MS: "50",
    FEM_LOG_BATCH_BYTES: "2048",
    FEM_KILL_GRACE_MS: "0",
    FEM_SHUTDOWN_GRACE_MS: "10",
    FEM_SHUTDOWN_MODE: "handback",
    FEM_LAUNCHERS: "process,sandbox,podman,docker,singularity,apptainer",
    FEM_RUN_AS_UID: "1500",
    FEM_RUN_AS_GID: "1501",
    FEM_RUN_MEMORY_MIB: "512",
    FEM_RUN_PIDS_MAX: "64",
    FEM_RUN_DISK_MIB: "100",
    FEM_RUN_CPU_SECONDS: "600",
    FEM_RUN_CPUS: "1.5",
    FEM_PODMAN_RUNTIME: "runc",
    FEM_SANDBOX_RETENTION_MS: "0",
    FEM_ALLOWED_TOOLS: "stats, fedavg@1.2",
    FEM_POLICY_FILE: "/etc/fem/policy.json",
  });
  assert.is(config.amqpUrl, "amqps://broker.example:5671/fem");
  assert.is(config.sandboxDir, "/var/lib/fem");
  assert.is(config.capacity, 8);
  assert.is(config.shutdownMode, "handback");
  assert.is(config.sandboxRetentionMs, 0);
  assert.equal(config.allowedTools, ["stats", "fedavg@1.2"]);
  assert.is(config.policyFile, "/etc/fem/policy.json");
  assert.equal(config.launchers, ["process", "sandbox", "podman", "docker", "singularity", "apptainer"]);
  assert.equal(
    [config.runAsUid, config.runAsGid, config.runMemoryMiB, config.runPidsMax, config.runDiskMiB, config.runCpuSeconds, config.runCpus],
    [1500, 1501, 512, 64, 100, 600, 1.5],
  );
  assert.is(config.podmanRuntime, "runc");
});

test("flags win over the environment, in both the `--flag value` and `--flag=value` forms", () => {
  const config = expectConfig({ FEM_NODE_ID: "site-a", FEM_CAPACITY: "5", FEM_SHUTDOWN_MODE: "finish" }, [
    "--node-id=site-b",
    "--capacity",
    "7",
    "--shutdown-mode",
    "handback",
  ]);
  assert.is(config.nodeId, "site-b");
  assert.is(config.capacity, 7);
  assert.is(config.shutdownMode, "handback");
});

test("treats blank values as unset", () => {
  const config = expectConfig({ FEM_NODE_ID: " site-a ", FEM_CAPACITY: "  ", FEM_SHUTDOWN_MODE: "", FEM_ALLOWED_TOOLS: " " });
  assert.is(config.nodeId, "site-a");
  assert.is(config.capacity, 2);
  assert.is(config.shutdownMode, "finish");
  assert.equal(config.allowedTools, []);
  assert.equal(expectProblems({ FEM_NODE_ID: "   " }), ["FEM_NODE_ID / --node-id is required"]);
});

test("lists every problem at once", () => {
  const problems = expectProblems(
    {
      AMQP_URL: "http://broker.example",
      FEM_CAPACITY: "many",
      FEM_HEARTBEAT_INTERVAL_MS: "99",
      FEM_LOG_BATCH_MS: "1.5",
      FEM_SHUTDOWN_MODE: "later",
      FEM_LAUNCHERS: "process,kubernetes",
      FEM_ALLOWED_TOOLS: "stats, bad tool, a@b@c",
    },
    ["--colour", "red", "--kill-grace-ms"],
  );
  assert.equal(
    problems,
    [
      'unknown argument "--colour" (see --help)',
      'unknown argument "red" (see --help)',
      "--kill-grace-ms needs a value",
      'AMQP_URL / --amqp-url must start with amqp:// or amqps://, got "http://broker.example/"',
      "FEM_NODE_ID / --node-id is required",
      'FEM_LAUNCHERS / --launchers: launcher "kubernetes" is not available (this agent offers process, sandbox, podman, docker, singularity, apptainer)',
      'FEM_SHUTDOWN_MODE / --shutdown-mode: "later" is not finish or handback',
      'FEM_ALLOWED_TOOLS / --allowed-tools: "bad tool" is not "name" or "name@version"',
      'FEM_ALLOWED_TOOLS / --allowed-tools: "a@b@c" is not "name" or "name@version"',
      'FEM_CAPACITY / --capacity must be an integer from 1 to 1000, got "many"',
      'FEM_HEARTBEAT_INTERVAL_MS / --heartbeat-interval-ms must be an integer from 100 to 3600000, got "99"',
      'FEM_LOG_BATCH_MS / --log-batch-ms must be an integer from 1 to 60000, got "1.5"',
    ],
  );
  assert.is(problems.length, 12);
});

test("refuses a bad node id, an unparseable AMQP URL and an empty launcher list, hiding the URL's password", () => {
  const problems = expectProblems({ FEM_NODE_ID: "Site_A", AMQP_URL: "amqp://agent:p/ss@broker", FEM_LAUNCHERS: " , " });
  assert.is(problems.length, 3, problems.join("\n"));
  assert.ok(problems[0]?.startsWith("AMQP_URL / --amqp-url is not a valid URL"));
  assert.not.ok(problems[0]?.includes("p/ss"), "the password is masked");
  assert.ok(problems[1]?.startsWith("FEM_NODE_ID / --node-id must match"));
  assert.is(problems[2], "FEM_LAUNCHERS / --launchers must name at least one launcher");
});

const RANGES: { env: string; key: keyof AgentConfig; min: number; max: number }[] = [
  { env: "FEM_CAPACITY", key: "capacity", min: 1, max: 1_000 },
  { env: "FEM_HEARTBEAT_INTERVAL_MS", key: "heartbeatIntervalMs", min: 100, max: 3_600_000 },
  { env: "FEM_LOG_BATCH_MS", key: "logBatchMs", min: 1, max: 60_000 },
  { env: "FEM_LOG_BATCH_BYTES", key: "logBatchBytes", min: 1_024, max: 16 * 1024 * 1024 },
  { env: "FEM_KILL_GRACE_MS", key: "killGraceMs", min: 0, max: 600_000 },
  { env: "FEM_SANDBOX_RETENTION_MS", key: "sandboxRetentionMs", min: 0, max: 31_536_000_000 },
  { env: "FEM_SHUTDOWN_GRACE_MS", key: "shutdownGraceMs", min: 0, max: 86_400_000 },
  { env: "FEM_RUN_AS_UID", key: "runAsUid", min: 1, max: 4_294_967_294 },
  { env: "FEM_RUN_AS_GID", key: "runAsGid", min: 1, max: 4_294_967_294 },
  { env: "FEM_RUN_MEMORY_MIB", key: "runMemoryMiB", min: 0, max: 16_777_216 },
  { env: "FEM_RUN_PIDS_MAX", key: "runPidsMax", min: 0, max: 4_194_304 },
  { env: "FEM_RUN_DISK_MIB", key: "runDiskMiB", min: 0, max: 1_073_741_824 },
  { env: "FEM_RUN_CPU_SECONDS", key: "runCpuSeconds", min: 0, max: 31_536_000 },
];

for (const { env, key, min, max } of RANGES) {
  test(`${env} accepts ${min} and ${max} and refuses one past either limit`, () => {
    assert.is(expectConfig({ FEM_NODE_ID: "site-a", [env]: String(min) })[key], min);
    assert.is(expectConfig({ FEM_NODE_ID: "site-a", [env]: String(max) })[key], max);
    for (const outside of [min - 1, max + 1]) {
      const problems = expectProblems({ FEM_NODE_ID: "site-a", [env]: String(outside) });
      assert.is(problems.length, 1, problems.join("\n"));
      assert.ok(problems[0]?.startsWith(`${env} / --`), problems[0]);
      assert.ok(problems[0]?.includes(`from ${min} to ${max}, got "${outside}"`), problems[0]);
    }
  });
}

test("FEM_RUN_CPUS takes fractions of CPUs and refuses anything else", () => {
  assert.is(expectConfig({ FEM_NODE_ID: "site-a", FEM_RUN_CPUS: "0.25" }).runCpus, 0.25);
  for (const bad of ["-1", "two", "1.2345", "1e3"]) {
    const problems = expectProblems({ FEM_NODE_ID: "site-a", FEM_RUN_CPUS: bad });
    assert.equal(problems, [`FEM_RUN_CPUS / --run-cpus must be a number of CPUs from 0 to 9999 with at most 3 decimals, got "${bad}"`]);
  }
  assert.equal(expectProblems({ FEM_NODE_ID: "site-a", FEM_PODMAN_RUNTIME: "runc --privileged" }), [
    'FEM_PODMAN_RUNTIME / --podman-runtime must be a runtime name or path, got "runc --privileged"',
  ]);
});

test("--help names every flag with its environment variable", () => {
  const usage = agentUsage();
  for (const [flag, env] of [
    ["--amqp-url", "AMQP_URL"],
    ["--node-id", "FEM_NODE_ID"],
    ["--shutdown-mode", "FEM_SHUTDOWN_MODE"],
    ["--allowed-tools", "FEM_ALLOWED_TOOLS"],
    ["--policy-file", "FEM_POLICY_FILE"],
    ["--orchestrator-public-key-file", "FEM_ORCHESTRATOR_PUBLIC_KEY_FILE"],
    ["--secrets-file", "FEM_SECRETS_FILE"],
    ["--amqp-ca-file", "FEM_AMQP_CA_FILE"],
    ["--amqp-cert-file", "FEM_AMQP_CERT_FILE"],
    ["--amqp-key-file", "FEM_AMQP_KEY_FILE"],
    ["--metrics-port", "FEM_AGENT_METRICS_PORT"],
    ["--metrics-host", "FEM_AGENT_METRICS_HOST"],
  ] as const) {
    assert.match(usage, new RegExp(`${flag}\\s+${env}\\s`));
  }
  assert.is(usage.split("\n").length, 35);
  assert.match(usage, /fem-agent policy add <name@version>/);
  assert.match(usage, /fem-agent outputs list \| approve <runId> \| reject <runId>/);
});

test("no flag takes a credential: a flag naming one takes a file, and --amqp-url refuses a password", () => {
  const flags = [...agentUsage().matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1] ?? "");
  assert.ok(flags.length >= 18, flags.join(" "));
  for (const flag of flags.filter((f) => /credential|secret|password|token|key/.test(f))) assert.match(flag, /-file$/, `${flag} takes a file, not the value`);
  // No URL carries a password (the node's credential comes from its own file), so none reaches the command line.
  const problems = expectProblems({ FEM_NODE_ID: "site-a" }, ["--amqp-url", "amqp://node:hunter2@broker:5672/fem"]);
  assert.match(problems.join("\n"), /must not carry a user or password/);
  assert.ok(!problems.join("").includes("hunter2"));
  assert.is(expectConfig({ FEM_NODE_ID: "site-a", FEM_SECRETS_FILE: "secrets.yaml" }).secretsFile, path.resolve("secrets.yaml"));
});

test("refuses to start without a pinned orchestrator key unless unsigned dispatches are allowed explicitly", () => {
  const problems = expectProblems({ FEM_NODE_ID: "site-a", FEM_ORCHESTRATOR_PUBLIC_KEY_FILE: undefined });
  assert.equal(problems, [
    "FEM_ORCHESTRATOR_PUBLIC_KEY_FILE / --orchestrator-public-key-file is required: the orchestrator public key that signs dispatches (or FEM_ALLOW_UNSIGNED / --allow-unsigned true, for tests and demos only)",
  ]);
  const config = expectConfig({ FEM_NODE_ID: "site-a", FEM_ORCHESTRATOR_PUBLIC_KEY_FILE: undefined, FEM_ALLOW_UNSIGNED: "true" });
  assert.is(config.orchestratorPublicKeyFile, null);
  assert.is(config.allowUnsigned, true);
});

test("takes the node credential from the environment only, one way, and refuses a user in AMQP_URL", () => {
  assert.equal(expectConfig({ FEM_NODE_ID: "site-a", FEM_NODE_CREDENTIAL_FILE: undefined, FEM_NODE_CREDENTIAL: "fem_node_x" }).credential, { value: "fem_node_x" });
  assert.equal(expectProblems({ FEM_NODE_ID: "site-a", FEM_NODE_CREDENTIAL_FILE: undefined }), [
    "FEM_NODE_CREDENTIAL_FILE is required: a file (mode 0600) holding the credential registerNode returned for this node (or FEM_NODE_CREDENTIAL)",
  ]);
  assert.equal(expectProblems({ FEM_NODE_ID: "site-a", FEM_NODE_CREDENTIAL: "fem_node_x" }), [
    "FEM_NODE_CREDENTIAL_FILE and FEM_NODE_CREDENTIAL are both set; give the credential one way",
  ]);
  // No flag carries it: a credential on the command line would be visible to every process.
  assert.match(expectProblems({ FEM_NODE_ID: "site-a" }, ["--node-credential", "x"])[0], /unknown argument/);
  assert.not.match(agentUsage(), /--[a-z-]*credential/i);
  const problems = expectProblems({ FEM_NODE_ID: "site-a", AMQP_URL: "amqp://guest:secret@broker:5672/fem" });
  assert.equal(problems, [
    `AMQP_URL / --amqp-url must not carry a user or password ("amqp://guest:***@broker:5672/fem"): the agent connects as its node's own broker user with FEM_NODE_CREDENTIAL_FILE`,
  ]);
});

test("takes several nodes of one RabbitMQ cluster, comma-separated, the first preferred, and checks the list", () => {
  const config = expectConfig({ FEM_NODE_ID: "site-a", AMQP_URL: "amqps://rabbit-1:5671/fem, amqps://rabbit-2:5671/fem" }, ["--amqp-ca-file", "/etc/fem/ca.pem"]);
  assert.is(config.amqpUrl, "amqps://rabbit-1:5671/fem");
  assert.equal(config.amqpFailoverUrls, ["amqps://rabbit-2:5671/fem"]);
  const problems = expectProblems({ FEM_NODE_ID: "site-a", AMQP_URL: "amqp://rabbit-1/fem,amqp://node:secret@rabbit-2/fem,amqp://rabbit-3/other,amqp://rabbit-1:5672/fem" });
  assert.equal(problems, [
    'AMQP_URL / --amqp-url must not carry a user or password ("amqp://node:***@rabbit-2/fem"): the agent connects as its node\'s own broker user with FEM_NODE_CREDENTIAL_FILE',
    'AMQP_URL / --amqp-url lists URLs of different vhosts ("fem" in amqp://rabbit-1/fem, "other" in amqp://rabbit-3/other): every URL must name the cluster\'s same vhost',
    "AMQP_URL / --amqp-url lists rabbit-1:5672 twice",
  ]);
  assert.equal(expectProblems({ FEM_NODE_ID: "site-a", AMQP_URL: " , " }), ["AMQP_URL / --amqp-url must be an amqp:// or amqps:// URL, or several, comma-separated"]);
});

test.run();
