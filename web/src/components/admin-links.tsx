/** The header's links to accounting, the caller's API tokens and, for those who may administer, Admin. */
import { useQuery } from "urql";
import { AccessQuery } from "../api/access-operations";
import { adminSections } from "../lib/admin-access";
import { routeHref, type Route } from "../lib/route";

export function AdminLinks({ route }: { route: Route }) {
  const [access] = useQuery({ query: AccessQuery });
  const sections = adminSections(access.data?.me);
  const current = (page: Route["page"]) => (route.page === page ? "page" : undefined);
  return (
    <>
      <a href={routeHref({ page: "accounting" })} aria-current={current("accounting")}>
        Accounting
      </a>
      <a href={routeHref({ page: "tokens" })} aria-current={current("tokens")}>
        API tokens
      </a>
      {sections.length > 0 && (
        <a href={routeHref({ page: "admin", section: sections[0] })} aria-current={current("admin")} data-testid="admin-link">
          Admin
        </a>
      )}
    </>
  );
}
