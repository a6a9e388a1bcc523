/** The caller's own API tokens: create one (shown once), see when each was last used, revoke. */
import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "urql";
import { AccessQuery } from "../api/access-operations";
import { ApiTokensQuery, CreateApiTokenMutation, RevokeApiTokenMutation } from "../api/admin-operations";
import { errorMessage } from "../api/client";
import { ActionMessage, type ActionOutcome } from "../components/action-message";
import { CopyableText, SecretOnce } from "../components/secret-once";
import { Status, TableHead } from "../components/status";
import { Time } from "../components/time";
import type { GlobalRole } from "../gql-admin/graphql";

function CreateTokenForm({ roles, onCreated }: { roles: readonly GlobalRole[]; onCreated(created: { name: string; token: string }): void }) {
  const [name, setName] = useState("");
  const [chosen, setChosen] = useState<GlobalRole[]>([]);
  const [expiresOn, setExpiresOn] = useState("");
  const [outcome, setOutcome] = useState<ActionOutcome>(null);
  const [state, create] = useMutation(CreateApiTokenMutation);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setOutcome(null);
    // A date picked here means the end of that day in the user's time zone.
    const expiresAt = expiresOn ? new Date(`${expiresOn}T23:59:59`).toISOString() : null;
    const result = await create({ input: { name: name.trim(), roles: chosen, expiresAt } });
    if (result.error || !result.data) return setOutcome({ ok: false, text: errorMessage(result.error) || "The token was not created." });
    setName("");
    setChosen([]);
    setExpiresOn("");
    onCreated({ name: result.data.createApiToken.apiToken.name, token: result.data.createApiToken.token });
  };

  return (
    <form className="panel form" onSubmit={submit} aria-labelledby="new-token-title">
      <h2 id="new-token-title">New token</h2>
      <label>
        Name <input value={name} onChange={(e) => setName(e.target.value)} maxLength={100} required data-testid="token-name" />
      </label>
      {roles.length > 0 && (
        <fieldset>
          <legend>Roles it carries (at most yours)</legend>
          {roles.map((role) => (
            <label key={role} className="inline">
              <input
                type="checkbox"
                checked={chosen.includes(role)}
                onChange={(e) => setChosen(e.target.checked ? [...chosen, role] : chosen.filter((r) => r !== role))}
              />{" "}
              {role}
            </label>
          ))}
        </fieldset>
      )}
      <label>
        Expires at the end of (optional) <input type="date" value={expiresOn} onChange={(e) => setExpiresOn(e.target.value)} />
      </label>
      <button type="submit" disabled={state.fetching}>
        {state.fetching ? "Creating…" : "Create token"}
      </button>
      <ActionMessage outcome={outcome} />
    </form>
  );
}

export function TokensPage() {
  const [access] = useQuery({ query: AccessQuery });
  const [tokens, refetch] = useQuery({ query: ApiTokensQuery });
  const [, revoke] = useMutation(RevokeApiTokenMutation);
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const [outcome, setOutcome] = useState<ActionOutcome>(null);
  const reload = () => refetch({ requestPolicy: "network-only" });

  const revokeToken = async (id: string, name: string) => {
    setOutcome(null);
    const result = await revoke({ id });
    setOutcome(result.error ? { ok: false, text: errorMessage(result.error) } : { ok: true, text: `Revoked ${name}.` });
    reload();
  };

  const list = tokens.data?.apiTokens ?? [];
  return (
    <section aria-labelledby="tokens-title">
      <h1 id="tokens-title">API tokens</h1>
      <p className="muted">Tokens act as you ({access.data?.me.subject ?? "…"}) for the CLI, scripts and notebooks. Send one as Authorization: Bearer ….</p>
      {created ? (
        <SecretOnce title={`Token ${created.name}`} onDone={() => setCreated(null)}>
          <CopyableText label="API token" value={created.token} testId="new-token" />
        </SecretOnce>
      ) : (
        <CreateTokenForm
          roles={access.data?.me.roles ?? []}
          onCreated={(value) => {
            setCreated(value);
            reload();
          }}
        />
      )}
      <h2 className="section-title">Your tokens</h2>
      <Status fetching={tokens.fetching} error={tokens.error} what="tokens" />
      <ActionMessage outcome={outcome} />
      {tokens.data && list.length === 0 && <p>You have no tokens.</p>}
      {list.length > 0 && (
        <table className="grid" data-testid="tokens">
          <TableHead columns={["Name", "Prefix", "Roles", "Created", "Expires", "Last used", "State", ""]} />
          <tbody>
            {list.map((t) => (
              <tr key={t.id} data-token={t.name}>
                <th scope="row">{t.name}</th>
                <td>
                  <code>{t.prefix}…</code>
                </td>
                <td>{t.roles.join(", ") || "—"}</td>
                <td>
                  <Time value={t.createdAt} />
                </td>
                <td>{t.expiresAt ? <Time value={t.expiresAt} /> : "never"}</td>
                <td>{t.lastUsedAt ? <Time value={t.lastUsedAt} /> : "never"}</td>
                <td data-testid="token-state">{t.revokedAt ? <>revoked <Time value={t.revokedAt} /></> : "active"}</td>
                <td>
                  {!t.revokedAt && (
                    <button type="button" onClick={() => revokeToken(t.id, t.name)} aria-label={`Revoke ${t.name}`}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
