/** Administration: the sections the caller's roles allow, each its own page under `#/admin/<section>`. */
import { useQuery } from "urql";
import { AccessQuery } from "../../api/access-operations";
import { Status } from "../../components/status";
import { ADMIN_SECTION_TITLES, adminSections, type AdminSection } from "../../lib/admin-access";
import { routeHref } from "../../lib/route";
import { AuditPage } from "./audit";
import { DeadLettersPage } from "./dead-letters";
import { RegisterNodePage } from "./nodes";
import { ProjectsPage } from "./projects";
import { ToolsPage } from "./tools";

function Section({ section }: { section: AdminSection }) {
  switch (section) {
    case "nodes":
      return <RegisterNodePage />;
    case "tools":
      return <ToolsPage />;
    case "projects":
      return <ProjectsPage />;
    case "audit":
      return <AuditPage />;
    case "dead-letters":
      return <DeadLettersPage />;
  }
}

export function AdminPage({ section }: { section: AdminSection }) {
  const [access] = useQuery({ query: AccessQuery });
  if (!access.data) return <Status fetching={access.fetching} error={access.error} what="your roles" />;
  const allowed = adminSections(access.data.me);
  if (!allowed.includes(section)) {
    return (
      <section aria-labelledby="admin-title">
        <h1 id="admin-title">Admin</h1>
        <p className="error" role="alert" data-testid="not-allowed">
          {ADMIN_SECTION_TITLES[section]} is for administrators{section === "projects" ? " and project owners" : ""}; you are signed in as {access.data.me.subject}.
        </p>
      </section>
    );
  }
  return (
    <div className="admin">
      <nav aria-label="Administration" className="subnav">
        {allowed.map((s) => (
          <a key={s} href={routeHref({ page: "admin", section: s })} aria-current={s === section ? "page" : undefined}>
            {ADMIN_SECTION_TITLES[s]}
          </a>
        ))}
      </nav>
      <Section section={section} />
    </div>
  );
}
