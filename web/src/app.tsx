/** Signed out: the sign-in page. Signed in: one API client for the tab, the header and the page the hash names. */
import { useCallback, useEffect, useRef, useState } from "react";
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
  const [message, setMessage] = useState<string | null>(null);
  // The session's own sign-out, reachable from the client it creates before the state exists.
  const signOutRef = useRef<(reason: string | null) => void>(() => undefined);
  const open = useCallback((token: string): ApiClient => createApiClient({ token, onUnauthenticated: (reason) => signOutRef.current(reason) }), []);
  // A token kept from earlier in this tab: used at once; the first refused request signs out with the server's message.
  // eslint-disable-next-line react-hooks/refs -- `open` only hands the client a callback; the ref is read when a request is refused, never during render
  const [session, setSession] = useState<Session | null>(() => {
    const token = storedToken();
    return token ? { token, client: open(token) } : null;
  });

  useEffect(() => {
    signOutRef.current = (reason) => {
      forgetToken();
      setMessage(reason);
      setSession((current) => {
        current?.client.dispose();
        return null;
      });
    };
  }, []);

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
        <Shell onSignOut={() => signOutRef.current(null)} />
      </ApiContext.Provider>
    </Provider>
  );
}
