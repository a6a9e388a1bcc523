/** Paste an API token; the orchestrator is asked who it belongs to before the token is kept. */
import { useState, type FormEvent } from "react";
import { errorMessage, type ApiClient } from "../api/client";
import { MeQuery } from "../api/operations";

export interface SignInPageProps {
  /** Why the last session ended (the server's message), if it did. */
  message: string | null;
  open(token: string): ApiClient;
  onSignedIn(token: string, client: ApiClient): void;
}

export function SignInPage({ message, open, onSignedIn }: SignInPageProps) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(message);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const trimmed = token.trim();
    if (!trimmed) return setError("Paste an API token.");
    setBusy(true);
    setError(null);
    const client = open(trimmed);
    const result = await client.urql.query(MeQuery, {}).toPromise();
    setBusy(false);
    if (result.data?.me) return onSignedIn(trimmed, client);
    client.dispose();
    setError(errorMessage(result.error) || "The orchestrator refused the token.");
  };

  return (
    <main className="sign-in">
      <h1>FEM dashboard</h1>
      <form onSubmit={submit} aria-describedby={error ? "sign-in-error" : undefined}>
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={token}
          onChange={(e) => setToken(e.target.value)}
          placeholder="fem_…"
          autoFocus
        />
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {error && (
          <p id="sign-in-error" className="error" role="alert" data-testid="sign-in-error">
            {error}
          </p>
        )}
      </form>
      <p className="hint">The token stays in this tab only (session storage) and is sent to this orchestrator alone.</p>
    </main>
  );
}
