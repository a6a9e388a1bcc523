/** Signed out: the sign-in page. Signed in: one API client for the tab, the header and the page the hash names. */
import { useCallback, useEffect, useState } from "react";
import { Provider } from "urql";
import { createApiClient, type ApiClient } from "./api/client";
import { ApiContext } from "./api/context";
import { forgetToken, storedToken, storeToken } from "./api/session";
import { Shell } from "./components/shell";
import { SignInPage } from "./pages/sign-in";

interface Session {
  token: string;
  client: ApiClient;
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [message, setMessage] = useState<string | null>(null);

  const signOut = useCallback((reason: string | null) => {
    forgetToken();
    setMessage(reason);
    setSession((current) => {
      current?.client.dispose();
      return null;
    });
  }, []);

  const open = useCallback(
    (token: string): ApiClient => createApiClient({ token, onUnauthenticated: (reason) => signOut(reason) }),
    [signOut],
  );

  // A token kept from earlier in this tab: use it; the first refused request signs out with the server's message.
  useEffect(() => {
    const token = storedToken();
    if (token) setSession({ token, client: open(token) });
  }, [open]);

  if (!session) {
    return (
      <SignInPage
        message={message}
        open={open}
        onSignedIn={(token, client) => {
          storeToken(token);
          setMessage(null);
          setSession({ token, client });
        }}
      />
    );
  }
  return (
    <Provider value={session.client.urql}>
      <ApiContext.Provider value={session.client}>
        <Shell onSignOut={() => signOut(null)} />
      </ApiContext.Provider>
    </Provider>
  );
}
