/** The commands a node's operator runs to start its agent with a credential registerNode answered. */

/** A POSIX shell single-quoted word: nothing inside is expanded. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface AgentCommandInput {
  nodeId: string;
  credential: string;
  capacity: number;
}

/**
 * Saves the credential to a file only the agent's user reads (the agent refuses one open to
 * others) and starts fem-agent; the broker URL is the operator's to fill in.
 */
export function agentStartCommand({ nodeId, credential, capacity }: AgentCommandInput): string {
  return [
    `install -m 600 /dev/null /etc/fem/node.credential && printf '%s' ${shellQuote(credential)} > /etc/fem/node.credential`,
    `AMQP_URL='amqp://BROKER-HOST:5672/VHOST' \\`,
    `FEM_NODE_CREDENTIAL_FILE=/etc/fem/node.credential \\`,
    `FEM_ORCHESTRATOR_PUBLIC_KEY_FILE=/etc/fem/orchestrator.pub \\`,
    `FEM_NODE_ID=${shellQuote(nodeId)} \\`,
    `FEM_SANDBOX_DIR=/var/lib/fem/sandbox \\`,
    `FEM_CAPACITY=${Math.max(1, Math.floor(capacity))} \\`,
    `node dist/src/agent/main.js`,
  ].join("\n");
}
