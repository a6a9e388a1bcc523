/**
 * AMQPS for real: a throwaway RabbitMQ node that speaks TLS only and requires client
 * certificates (mutual TLS), an orchestrator and an agent connected to it with a CA bundle, a
 * client certificate and its key. An agent that does not trust the broker's CA, one without a
 * client certificate and a plain amqp:// connection are all refused.
 */
import { chmod, copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import amqp from "amqplib";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createOrchestrator } from "../../src/app.js";
import { createLogger } from "../../src/logger.js";
import { ServiceUnreachableError } from "../../src/unreachable.js";
import { spawnAgent } from "../support/agent.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { finishedWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { gqlOk } from "../support/graphql.js";
import { createTestPki, type TestPki } from "../support/pki.js";
import { startTlsBroker, type TlsBroker } from "../support/tls-broker.js";
import { waitUntil, withTimeout } from "../support/wait.js";

const test = suite("AMQPS: TLS to RabbitMQ with CA, certificate and key files");
let dir: string;
let pki: TestPki;
let broker: TlsBroker | undefined;
let env: TestEnv | undefined;
let tool: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "fem-amqps-"));
  await mkdir(join(dir, "pki"));
  pki = await createTestPki(join(dir, "pki"));
  broker = await startTlsBroker(pki);
  const clientTls = { FEM_AMQP_CA_FILE: pki.caFile, FEM_AMQP_CERT_FILE: pki.clientCertFile, FEM_AMQP_KEY_FILE: pki.clientKeyFile };
  env = await createTestEnv(
    {
      amqpTls: { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile },
      brokerManagementUrl: `http://guest:guest@127.0.0.1:${broker.managementPort}`,
    },
    {},
    // The node is the suite's own: its default vhost, removed with the node.
    { vhost: { name: "/", url: `amqps://guest:guest@localhost:${broker.tlsPort}/`, drop: async () => undefined }, agentEnv: clientTls },
  );
  await env.registerNodes(["tls-site"]);
  tool = await registerNodeScriptTool(env.orchestrator.url, "over-tls", "console.log('hello over TLS')");
});

test.after(async () => {
  try {
    await env?.dispose();
  } finally {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

/** The broker's view of its client connections. */
async function connections(): Promise<{ user: string; ssl: boolean; peer_cert_subject: string | null }[]> {
  const auth = `Basic ${Buffer.from("guest:guest").toString("base64")}`;
  const response = await fetch(`http://127.0.0.1:${broker!.managementPort}/api/connections`, { headers: { authorization: auth }, signal: AbortSignal.timeout(10_000) });
  return (await response.json()) as never;
}

let refusedAgents = 0;

/** The one line a failed start of another agent of `nodeId` (in a sandbox of its own) printed. */
async function failedStart(nodeId: string, agentEnv: Record<string, string>): Promise<string> {
  refusedAgents += 1;
  const started = spawnAgent({
    nodeId,
    amqpUrl: `amqps://localhost:${broker!.tlsPort}/`,
    credential: await env!.credentialOf(nodeId),
    sandboxDir: join(env!.sandboxRoot, `${nodeId}-refused-${refusedAgents}`),
    capacity: 1,
    heartbeatIntervalMs: 300,
    env: { FEM_ORCHESTRATOR_PUBLIC_KEY_FILE: `${env!.config.signingKeyFile}.pub`, FEM_AMQP_CERT_FILE: pki.clientCertFile, FEM_AMQP_KEY_FILE: pki.clientKeyFile, ...agentEnv },
  });
  const err = await started.then(
    async (agent) => {
      await agent.stop();
      throw new Error("the agent started");
    },
    (failure: unknown) => failure as Error,
  );
  const lines = err.message.split("\n").slice(1).filter((line) => line.trim() !== "");
  assert.is(lines.length, 1, err.message);
  return lines[0]!;
}

test("an orchestrator and an agent on amqps:// with a CA file and client certificates run a workflow to SUCCEEDED", async () => {
  await env!.startAgent("tls-site");
  const submitted = await gqlOk(env!.orchestrator.url, SUBMIT, { input: { project: "test", tasks: [{ key: "t", tool, nodes: ["tls-site"] }] } });
  const workflow = await finishedWorkflow(env!.orchestrator.url, submitted.submitWorkflow.id);
  assert.is(workflow.state, "SUCCEEDED", JSON.stringify(workflow));

  // Every connection is TLS, and each presented the client certificate.
  const open = await waitUntil(async () => {
    const listed = await connections();
    return listed.some((c) => c.user === "guest") && listed.some((c) => c.user === "fem-node.tls-site") && listed;
  }, 10_000, "the orchestrator's and the agent's connections to be listed");
  for (const connection of open) {
    assert.ok(connection.ssl, JSON.stringify(connection));
    assert.match(connection.peer_cert_subject ?? "", /fem-test-client/);
  }
});

test("an agent that does not trust the broker's CA stops with one line naming the TLS problem", async () => {
  // Blank counts as unset: Node's default trust store, which does not hold the suite's CA.
  const line = await failedStart("tls-site", { FEM_AMQP_CA_FILE: "" });
  assert.match(line, /^fem-agent: TLS to RabbitMQ at amqps:\/\/localhost:\d+\/ failed \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\) — the broker's certificate is not trusted: set FEM_AMQP_CA_FILE/);
});

test("an orchestrator that does not trust the broker's CA stops with one line naming the TLS problem", async () => {
  const config = { ...env!.config, amqpTls: { caFile: null, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile }, migrateOnStart: false, port: 0 };
  const failure = await createOrchestrator(config, createLogger("silent")).then(
    async (orchestrator) => {
      await orchestrator.stop();
      throw new Error("the orchestrator started");
    },
    (err: unknown) => err as Error,
  );
  assert.instance(failure, ServiceUnreachableError);
  assert.match(failure.message, /^TLS to RabbitMQ at amqps:\/\/guest:\*\*\*@localhost:\d+\/ failed \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\): the broker's certificate is not trusted: set FEM_AMQP_CA_FILE/);
  assert.not.match(failure.message, /\n/);
});

test("an agent without a client certificate is refused by a broker that requires one", async () => {
  const line = await failedStart("tls-site", { FEM_AMQP_CA_FILE: pki.caFile, FEM_AMQP_CERT_FILE: "", FEM_AMQP_KEY_FILE: "" });
  assert.match(line, /^fem-agent: TLS to RabbitMQ at amqps:\/\/localhost:\d+\/ failed \(\w+\) — the broker refused the TLS handshake \(it may require a client certificate/);
});

test("an agent whose client key is readable by others does not start", async () => {
  const openKey = join(dir, "pki", "client-open.key");
  await copyFile(pki.clientKeyFile, openKey);
  await chmod(openKey, 0o644);
  const line = await failedStart("tls-site", { FEM_AMQP_CA_FILE: pki.caFile, FEM_AMQP_KEY_FILE: openKey });
  assert.is(line, `fem-agent: cannot start: FEM_AMQP_KEY_FILE ${openKey} is open to group or others (mode 0644); make it readable by the agent's user only: chmod 600 ${openKey}`);
});

test("a plain amqp:// connection to the TLS port is refused", async () => {
  const connecting = amqp.connect(`amqp://guest:guest@localhost:${broker!.tlsPort}/`, { timeout: 5_000 });
  const outcome = await withTimeout(
    connecting.then(
      async (connection) => {
        await connection.close();
        return "connected";
      },
      (err: unknown) => `refused: ${(err as Error).message}`,
    ),
    15_000,
    "the plain connection to settle",
  );
  assert.match(outcome, /^refused: /);
});

test.run();
