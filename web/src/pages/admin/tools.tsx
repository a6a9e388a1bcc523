/** Registers a tool version from a pasted JSON or YAML definition (ADMIN) and lists the registered ones. */
import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "urql";
import { RegisterToolMutation, ToolsQuery } from "../../api/admin-operations";
import { errorMessage } from "../../api/client";
import { ActionMessage, type ActionOutcome } from "../../components/action-message";
import { Status, TableHead } from "../../components/status";
import { Time } from "../../components/time";
import type { RegisterToolInput } from "../../gql-admin/graphql";
import { parseToolDefinition } from "../../lib/tool-definition";

const TOOLS_SHOWN = 200;

const EXAMPLE = `name: cohort-stats
version: "1.0.0"
executable: /opt/fem/tools/cohort-stats
args:
  - { id: cohort, type: STRING, position: 0, required: true }
outputs: ["out/*.csv"]
timeoutSeconds: 600`;

export function ToolsPage() {
  const [text, setText] = useState("");
  const [outcome, setOutcome] = useState<ActionOutcome>(null);
  const [state, register] = useMutation(RegisterToolMutation);
  const [tools, refetch] = useQuery({ query: ToolsQuery, variables: { first: TOOLS_SHOWN } });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setOutcome(null);
    const parsed = parseToolDefinition(text);
    if (!parsed.ok) return setOutcome({ ok: false, text: parsed.problem });
    // The server validates every field and names the one that is wrong.
    const result = await register({ input: parsed.input as unknown as RegisterToolInput });
    if (result.error || !result.data) return setOutcome({ ok: false, text: errorMessage(result.error) || "The tool was not registered." });
    setOutcome({ ok: true, text: `Registered ${result.data.registerTool.ref} (${result.data.registerTool.digest}).` });
    setText("");
    refetch({ requestPolicy: "network-only" });
  };

  const list = tools.data?.tools.nodes ?? [];
  return (
    <section aria-labelledby="tools-title">
      <h1 id="tools-title">Tools</h1>
      <form className="panel form" onSubmit={submit} aria-labelledby="register-tool-title">
        <h2 id="register-tool-title">Register a tool version</h2>
        <label htmlFor="tool-definition">Definition (JSON or YAML; name@version is immutable once registered)</label>
        <textarea id="tool-definition" rows={12} spellCheck={false} value={text} onChange={(e) => setText(e.target.value)} placeholder={EXAMPLE} data-testid="tool-definition" />
        <button type="submit" disabled={state.fetching}>
          {state.fetching ? "Registering…" : "Register tool"}
        </button>
        <ActionMessage outcome={outcome} />
      </form>
      <h2 className="section-title">Registered tools</h2>
      <Status fetching={tools.fetching} error={tools.error} what="tools" />
      {tools.data && list.length === 0 && <p>No tools are registered.</p>}
      {list.length > 0 && (
        <table className="grid" data-testid="tools">
          <TableHead columns={["Tool", "Executable", "Launcher", "Digest", "Registered"]} />
          <tbody>
            {list.map((t) => (
              <tr key={t.id} data-tool={t.ref}>
                <th scope="row">{t.ref}</th>
                <td>
                  <code>{t.executable}</code>
                </td>
                <td>{t.launcher}</td>
                <td>
                  <code className="digest" title={t.digest}>
                    {t.digest.slice(0, 19)}…
                  </code>
                </td>
                <td>
                  <Time value={t.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
