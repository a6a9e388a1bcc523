/** What the rest of the repository (tests, scripts) may use of the agent. */
export { createAgent, type Agent, type AgentDeps } from "./agent.js";
export { BrokerConnectError, buildBrokerConfig } from "./broker.js";
export { agentUsage, parseAgentConfig, type AgentConfig, type ParsedAgentConfig } from "./config.js";
export { AGENT_VERSION } from "./heartbeat.js";
export { createStderrLogger, silentLogger, type AgentLogger } from "./log.js";
