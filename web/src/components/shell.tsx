/** The header (pages, connection, who is signed in) and the page the URL's hash names. */
import { lazy, Suspense, useEffect, useState } from "react";
import { useQuery } from "urql";
import type { ConnectionState } from "../api/client";
import { useApi } from "../api/context";
import { MeQuery } from "../api/operations";
import { ViewerContext } from "../api/viewer";
import { parseRoute, type Route } from "../lib/route";
import { NodesPage } from "../pages/nodes";
import { RunPage } from "../pages/run";
import { WorkflowsPage } from "../pages/workflows";
import { AdminLinks } from "./admin-links";

// The graph page brings the layout library: loaded when first opened, not with the first page.
const WorkflowPage = lazy(() => import("../pages/workflow").then((m) => ({ default: m.WorkflowPage })));
// Accounting brings the charting library, the admin pages the YAML parser: loaded when first opened.
const AccountingPage = lazy(() => import("../pages/accounting").then((m) => ({ default: m.AccountingPage })));
const TokensPage = lazy(() => import("../pages/tokens").then((m) => ({ default: m.TokensPage })));
const AdminPage = lazy(() => import("../pages/admin/admin").then((m) => ({ default: m.AdminPage })));

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

function useConnection(): ConnectionState | null {
  const api = useApi();
  const [state, setState] = useState<ConnectionState | null>(null);
  useEffect(() => api.onConnection(setState), [api]);
  return state;
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case "nodes":
      return <NodesPage />;
    case "workflows":
      return <WorkflowsPage />;
    case "workflow":
      return <WorkflowPage key={route.id} id={route.id} taskId={route.taskId} />;
    case "run":
      return <RunPage key={route.id} id={route.id} />;
    case "accounting":
      return <AccountingPage />;
    case "tokens":
      return <TokensPage />;
    case "admin":
      return <AdminPage section={route.section} />;
  }
}

export function Shell({ onSignOut }: { onSignOut(): void }) {
  const route = useRoute();
  const connection = useConnection();
  const [me] = useQuery({ query: MeQuery });
  const section = route.page === "nodes" ? "nodes" : ["workflows", "workflow", "run"].includes(route.page) ? "workflows" : null;
  return (
    <>
      <header className="top">
        <span className="brand">FEM</span>
        <nav aria-label="Pages">
          <a href="#/workflows" aria-current={section === "workflows" ? "page" : undefined}>
            Workflows
          </a>
          <a href="#/nodes" aria-current={section === "nodes" ? "page" : undefined}>
            Nodes
          </a>
          <AdminLinks route={route} />
        </nav>
        <span className="spacer" />
        {connection === "reconnecting" && (
          <span className="connection" role="status">
            Reconnecting…
          </span>
        )}
        <span className="who" data-testid="signed-in-as">
          {me.data?.me.subject ?? ""}
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main className="page">
        <ViewerContext.Provider value={me.data?.me ?? null}>
          <Suspense fallback={<p className="loading">Loading…</p>}>
            <Page route={route} />
          </Suspense>
        </ViewerContext.Provider>
      </main>
    </>
  );
}
