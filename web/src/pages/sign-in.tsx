/**
 * Paste an API token, or sign in through the site's identity provider when one is configured;
 * either way the orchestrator is asked who the token belongs to before it is kept.
 */
import { useEffect, useState, type FormEvent } from "react";
import { errorMessage, type ApiClient } from "../api/client";
import { isSignInCallback, loadSignInConfig, type SignInConfig } from "../api/sign-in-config";
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
  const [provider, setProvider] = useState<SignInConfig | null>(null);

  const tryToken = async (candidate: string) => {
    setBusy(true);
    setError(null);
    const client = open(candidate);
    const result = await client.urql.query(MeQuery, {}).toPromise();
    setBusy(false);
    if (result.data?.me) return onSignedIn(candidate, client);
    client.dispose();
    setError(errorMessage(result.error) || "The orchestrator refused the token.");
  };

  // The provider's redirect back to this page carries the code to trade for a token.
  useEffect(() => {
    let current = true;
    void loadSignInConfig().then(async (config) => {
      if (!current) return;
      setProvider(config);
      if (!config || !isSignInCallback(window.location)) return;
      setBusy(true);
      try {
        const { finishSignIn } = await import("../api/oidc");
        const accessToken = await finishSignIn(config);
        if (current) await tryToken(accessToken);
      } catch (err) {
        if (!current) return;
        setBusy(false);
        setError(`Sign-in through ${config.issuer} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    return () => {
      current = false;
    };
    // Once per page load: the callback's code can be traded only once.
    // eslint-disable-next-line react-hooks/exhaustive-deps -- deliberately once, whatever `tryToken` closes over
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const trimmed = token.trim();
    if (!trimmed) return setError("Paste an API token.");
    await tryToken(trimmed);
  };

  const signInWithProvider = async () => {
    if (!provider) return;
    setBusy(true);
    setError(null);
    try {
      const { startSignIn } = await import("../api/oidc");
      await startSignIn(provider);
    } catch (err) {
      setBusy(false);
      setError(`Cannot reach ${provider.issuer}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  return (
    <main className="sign-in">
      <h1>FEM dashboard</h1>
      {provider && (
        <p>
          <button type="button" onClick={() => void signInWithProvider()} disabled={busy} data-testid="oidc-sign-in">
            Sign in with {new URL(provider.issuer).host}
          </button>
        </p>
      )}
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
