/** Registers a node (ADMIN) and shows its credential once, with the agent's start command and the orchestrator's public key. */
import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "urql";
import { OrchestratorPublicKeyQuery, RegisterNodeMutation } from "../../api/admin-operations";
import { errorMessage } from "../../api/client";
import { ActionMessage, type ActionOutcome } from "../../components/action-message";
import { CopyableText, SecretOnce } from "../../components/secret-once";
import { agentStartCommand } from "../../lib/agent-command";
import { routeHref } from "../../lib/route";

interface Registered {
  nodeId: string;
  credential: string;
  capacity: number;
}

function splitList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function RegisterNodePage() {
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [capacity, setCapacity] = useState("2");
  const [allowedTools, setAllowedTools] = useState("");
  const [outcome, setOutcome] = useState<ActionOutcome>(null);
  const [registered, setRegistered] = useState<Registered | null>(null);
  const [state, register] = useMutation(RegisterNodeMutation);
  const [publicKey] = useQuery({ query: OrchestratorPublicKeyQuery, pause: registered === null });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setOutcome(null);
    const tools = splitList(allowedTools);
    const result = await register({
      input: { id: id.trim(), name: name.trim() || null, capacity: Number(capacity), allowedTools: tools.length > 0 ? tools : null },
    });
    if (result.error || !result.data) return setOutcome({ ok: false, text: errorMessage(result.error) || "The node was not registered." });
    const { node, credential } = result.data.registerNode;
    setRegistered({ nodeId: node.id, credential, capacity: node.capacity });
    setId("");
    setName("");
    setAllowedTools("");
  };

  return (
    <section aria-labelledby="register-node-title">
      <h1 id="register-node-title">Register a node</h1>
      <p className="muted">
        The orchestrator creates the node's own broker user and answers its credential once. The node then appears on the <a href={routeHref({ page: "nodes" })}>Nodes</a> page;
        add it to a project under Projects so the project's workflows may run there.
      </p>
      {registered ? (
        <SecretOnce title={`Credential of node ${registered.nodeId}`} onDone={() => setRegistered(null)}>
          <CopyableText label="Node credential" value={registered.credential} testId="node-credential" />
          <p>On the node, as the agent's user, save it and start the agent (set the broker's address and vhost):</p>
          <CopyableText label="Start command" value={agentStartCommand(registered)} multiline testId="agent-command" />
          {publicKey.data && (
            <>
              <p>
                Save the orchestrator's public key as <code>/etc/fem/orchestrator.pub</code>: the agent checks every dispatch against it.
              </p>
              <CopyableText label="Orchestrator public key" value={publicKey.data.orchestratorPublicKey} multiline testId="orchestrator-key" />
            </>
          )}
        </SecretOnce>
      ) : (
        <form className="panel form" onSubmit={submit} aria-labelledby="register-node-form">
          <h2 id="register-node-form">New node</h2>
          <label>
            Node id (2–63 lowercase letters, digits and -){" "}
            <input value={id} onChange={(e) => setId(e.target.value)} required data-testid="node-id" />
          </label>
          <label>
            Name (optional) <input value={name} onChange={(e) => setName(e.target.value)} />
          </label>
          <label>
            Capacity (runs at once) <input type="number" min={1} value={capacity} onChange={(e) => setCapacity(e.target.value)} required />
          </label>
          <label>
            Allowed tools (name or name@version, separated by spaces or commas; empty: any){" "}
            <input value={allowedTools} onChange={(e) => setAllowedTools(e.target.value)} />
          </label>
          <button type="submit" disabled={state.fetching}>
            {state.fetching ? "Registering…" : "Register node"}
          </button>
          <ActionMessage outcome={outcome} />
        </form>
      )}
    </section>
  );
}
