/** Everything a suite needs: its own database, its own vhost, an orchestrator, agents; all disposed. */
import "reflect-metadata";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOrchestrator, type Orchestrator, type OrchestratorHooks } from "../../src/app.js";
import { parseConfig, type OrchestratorConfig } from "../../src/config.js";
import { createLogger, type Logger, type LogLevel } from "../../src/logger.js";
import { nodeBrokerUser } from "../../src/messaging/contracts.js";
import { createTestVhost, type TestVhost } from "./broker.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { addToTestProject, createTestProject, gqlOk, TEST_ADMIN_TOKEN } from "./graphql.js";
import { spawnAgent, type AgentOptions, type AgentProcess } from "./agent.js";

export interface TestEnv {
  db: TestDatabase;
  vhost: TestVhost;
  orchestrator: Orchestrator;
  config: OrchestratorConfig;
  sandboxRoot: string;
  agents: AgentProcess[];
  /** Starts a real `fem-agent` process for `nodeId` on this suite's vhost. */
  startAgent(nodeId: string, options?: Partial<AgentOptions>): Promise<AgentProcess>;
  /** Registers nodes over GraphQL and adds them to the suite's project `test`. */
  registerNodes(ids: string[], capacity?: number): Promise<void>;
  /** A registered node's credential: the one registerNodes got, else a new one from rotateNodeCredential. */
  credentialOf(nodeId: string): Promise<string>;
  /** The suite's AMQP URL with the node's own broker user and credential (what its agent connects as). */
  nodeAmqpUrl(nodeId: string): Promise<string>;
  /** Runs raw SQL on the suite's database. */
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  dispose(): Promise<void>;
}

const level = (process.env.TEST_LOG_LEVEL ?? "silent") as LogLevel;

/** The default configuration with `overrides` applied. */
export function configWith(overrides: Partial<OrchestratorConfig>): OrchestratorConfig {
  const base = parseConfig({});
  if (!base.ok) throw new Error(`default configuration is invalid: ${base.problems.join("; ")}`);
  return { ...base.config, ...overrides };
}

export interface TestEnvServices {
  /** The vhost to use (dropped with the env) instead of a new one on the machine's RabbitMQ. */
  vhost?: TestVhost;
  /** Environment every agent of the suite starts with (before each agent's own `env`). */
  agentEnv?: Record<string, string>;
  /** The orchestrator's logger (tests that read its lines). @default TEST_LOG_LEVEL lines on stderr, silent by default */
  logger?: Logger;
}

export async function createTestEnv(overrides: Partial<OrchestratorConfig> = {}, hooks: OrchestratorHooks = {}, services: TestEnvServices = {}): Promise<TestEnv> {
  const db = await createTestDatabase();
  const vhost = services.vhost ?? (await createTestVhost());
  const sandboxRoot = await mkdtemp(join(tmpdir(), "fem-test-"));
  const config = configWith({
    databaseUrl: db.url,
    amqpUrl: vhost.url,
    port: 0,
    heartbeatIntervalMs: 500,
    missedHeartbeats: 3,
    relayPollMs: 100,
    logLevel: level,
    bootstrapAdminToken: TEST_ADMIN_TOKEN,
    signingKeyFile: join(sandboxRoot, "orchestrator-key.pem"),
    artifactDir: join(sandboxRoot, "artifacts"),
    transferStallMs: 3_000,
    ...overrides,
  });
  let orchestrator: Orchestrator;
  try {
    orchestrator = await createOrchestrator(config, services.logger ?? createLogger(level), hooks);
  } catch (err) {
    await db.drop();
    await vhost.drop();
    throw err;
  }
  await createTestProject(orchestrator.url);
  const agents: AgentProcess[] = [];
  const credentials = new Map<string, string>();
  const env: TestEnv = {
    db,
    vhost,
    orchestrator,
    config,
    sandboxRoot,
    agents,
    async startAgent(nodeId, options = {}) {
      const agent = await spawnAgent({
        nodeId,
        amqpUrl: vhost.url,
        // A node that is not registered has no credential; its agent gets one RabbitMQ refuses.
        credential: options.credential ?? (await env.credentialOf(nodeId).catch(() => "fem_node_unregistered")),
        sandboxDir: join(sandboxRoot, nodeId),
        capacity: 2,
        heartbeatIntervalMs: 300,
        ...options,
        env: { FEM_ORCHESTRATOR_PUBLIC_KEY_FILE: `${config.signingKeyFile}.pub`, ...services.agentEnv, ...options.env },
      });
      agents.push(agent);
      return agent;
    },
    async registerNodes(ids, capacity = 2) {
      for (const id of ids) {
        const data = await gqlOk<{ registerNode: { credential: string } }>(
          env.orchestrator.url,
          `mutation($input: RegisterNodeInput!) { registerNode(input: $input) { node { id } credential } }`,
          { input: { id, capacity, labels: { site: id } } },
        );
        credentials.set(id, data.registerNode.credential);
      }
      await addToTestProject(env.orchestrator.url, ids);
    },
    async credentialOf(nodeId) {
      const known = credentials.get(nodeId);
      if (known !== undefined) return known;
      const data = await gqlOk<{ rotateNodeCredential: { credential: string } }>(
        env.orchestrator.url,
        `mutation($id: ID!) { rotateNodeCredential(id: $id) { credential } }`,
        { id: nodeId },
      );
      credentials.set(nodeId, data.rotateNodeCredential.credential);
      return data.rotateNodeCredential.credential;
    },
    async nodeAmqpUrl(nodeId) {
      const url = new URL(vhost.url);
      url.username = encodeURIComponent(nodeBrokerUser(vhost.name, nodeId));
      url.password = encodeURIComponent(await env.credentialOf(nodeId));
      return url.toString();
    },
    async sql(query, params = []) {
      // env.orchestrator, not the first one: a suite may restart the orchestrator.
      return (await env.orchestrator.orm.em.fork().getConnection().execute(query, params, "all")) as never;
    },
    async dispose() {
      await Promise.all(agents.map((a) => a.stop()));
      await env.orchestrator.stop();
      await db.drop();
      await vhost.drop();
      await rm(sandboxRoot, { recursive: true, force: true });
    },
  };
  return env;
}
