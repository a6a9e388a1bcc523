/** The app's pages, addressed by the URL's hash (`#/runs/<id>`) so the server serves one page at `/`. */
import { ADMIN_SECTIONS, type AdminSection } from "./admin-access";

export type Route =
  | { page: "nodes" }
  | { page: "workflows" }
  | { page: "workflow"; id: string; taskId: string | null }
  | { page: "run"; id: string }
  | { page: "accounting" }
  | { page: "tokens" }
  | { page: "admin"; section: AdminSection };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "nodes") return { page: "nodes" };
  if (parts[0] === "workflows" && parts[1]) return { page: "workflow", id: parts[1], taskId: parts[2] === "tasks" && parts[3] ? parts[3] : null };
  if (parts[0] === "runs" && parts[1]) return { page: "run", id: parts[1] };
  if (parts[0] === "accounting") return { page: "accounting" };
  if (parts[0] === "tokens") return { page: "tokens" };
  if (parts[0] === "admin") return { page: "admin", section: ADMIN_SECTIONS.find((s) => s === parts[1]) ?? ADMIN_SECTIONS[0] };
  return { page: "workflows" };
}

export function routeHref(route: Route): string {
  switch (route.page) {
    case "nodes":
      return "#/nodes";
    case "workflows":
      return "#/workflows";
    case "workflow":
      return `#/workflows/${encodeURIComponent(route.id)}${route.taskId ? `/tasks/${encodeURIComponent(route.taskId)}` : ""}`;
    case "run":
      return `#/runs/${encodeURIComponent(route.id)}`;
    case "accounting":
      return "#/accounting";
    case "tokens":
      return "#/tokens";
    case "admin":
      return `#/admin/${route.section}`;
  }
}
