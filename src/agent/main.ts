#!/usr/bin/env node
/**
 * The `fem-agent` command: parses the configuration, starts the agent, and shuts it down in order
 * on SIGTERM/SIGINT (a second signal kills the runs and exits at once).
 */
import { amqpTlsHint, amqpUrlsOf, maskUrl, oneLine, toError, vhostOf } from "../shared/index.js";
import { createAgent } from "./agent.js";
import { BrokerConnectError, brokerUserOf } from "./broker.js";
import { agentEnvironment, agentUsage, loadAgentConfig, type AgentConfig } from "./config.js";
import { createStderrLogger } from "./log.js";
import { runOutputsCommand } from "./outputs-cli.js";
import { runPolicyCommand } from "./policy-cli.js";

const RABBITMQ_HINT = "start it (e.g. docker-compose up -d rabbitmq, or rabbitmq-server -detached)";
const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET"]);

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "policy") {
    process.exitCode = await runPolicyCommand(argv.slice(1), { env: agentEnvironment(), stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
    return;
  }
  if (argv[0] === "outputs") {
    process.exitCode = await runOutputsCommand(argv.slice(1), { env: agentEnvironment(), stdout: process.stdout, stderr: process.stderr });
    return;
  }
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${agentUsage()}\n`);
    return;
  }
  const parsed = loadAgentConfig(argv);
  if (!parsed.ok) {
    for (const problem of parsed.problems) process.stderr.write(`fem-agent: ${problem}\n`);
    process.exit(1);
  }
  const config = parsed.config;
  const log = createStderrLogger();
  const agent = createAgent(config, { log });

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      log.warn(`${signal} again: killing ${agent.activeRunCount()} run(s) and exiting now`);
      agent.abort();
      process.exit(1);
    }
    log.info(`${signal}: shutting down (${agent.activeRunCount()} active run(s); a second signal exits at once)`);
    agent.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error(`shutdown failed: ${toError(err).stack ?? String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  try {
    await agent.start();
  } catch (err) {
    if (signals > 0) return;
    process.stderr.write(`${startFailureLine(config, err)}\n`);
    process.exit(1);
  }
  if (signals > 0) return;
  process.stdout.write(`fem-agent ${config.nodeId} ready (capacity ${config.capacity}, sandbox ${config.sandboxDir}, broker ${amqpUrlsOf(config).map(maskUrl).join(", ")})\n`);
}

/** One line, no stack: what failed and what to do about it. */
function startFailureLine(config: AgentConfig, err: unknown): string {
  const url = amqpUrlsOf(config).map(maskUrl).join(", ");
  if (err instanceof BrokerConnectError) {
    const tlsHint = amqpTlsHint(err.code);
    if (tlsHint !== null) return `fem-agent: TLS to RabbitMQ at ${url} failed (${err.code}) — ${tlsHint}`;
    if (UNREACHABLE_CODES.has(err.code)) return `fem-agent: cannot reach RabbitMQ at ${url} (${err.code}) — ${RABBITMQ_HINT}`;
    const user = brokerUserOf(config);
    if (err.code === "ACCESS_REFUSED") {
      return `fem-agent: RabbitMQ at ${url} refused ${user} (ACCESS_REFUSED) — is node ${config.nodeId} registered, and is FEM_NODE_CREDENTIAL_FILE its current credential (rotateNodeCredential issues a new one)?`;
    }
    if (err.code === "NOT_ALLOWED") {
      return `fem-agent: RabbitMQ at ${url} does not let ${user} use the vhost "${vhostOf(config.amqpUrl)}" (NOT_ALLOWED) — the node is DISABLED, or the orchestrator uses another vhost`;
    }
    if (err.code === "NOT_FOUND") return `fem-agent: node ${config.nodeId}'s queues do not exist on RabbitMQ at ${url} — the orchestrator declares them when the node is registered`;
    return `fem-agent: cannot set up RabbitMQ at ${url} (${err.code}): ${oneLine(err.message)}`;
  }
  const error = toError(err);
  const cause = error.cause instanceof Error ? `: ${oneLine(error.cause.message)}` : "";
  return `fem-agent: cannot start: ${oneLine(error.message)}${cause}`;
}

main().catch((err: unknown) => {
  process.stderr.write(`fem-agent: ${toError(err).stack ?? String(err)}\n`);
  process.exit(1);
});
