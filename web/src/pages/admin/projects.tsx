/** Projects, their members and nodes: ADMIN creates projects and assigns nodes; a project's OWNER (or ADMIN) manages its members. */
import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "urql";
import { AccessQuery } from "../../api/access-operations";
import {
  AddProjectMemberMutation,
  AddProjectNodeMutation,
  CreateProjectMutation,
  ProjectsQuery,
  RemoveProjectMemberMutation,
  RemoveProjectNodeMutation,
  SetProjectMemberRoleMutation,
} from "../../api/admin-operations";
import { errorMessage } from "../../api/client";
import { ActionMessage, type ActionOutcome } from "../../components/action-message";
import { Status, TableHead } from "../../components/status";
import { Time } from "../../components/time";
import type { ProjectFieldsFragment, ProjectRole } from "../../gql-admin/graphql";
import { isAdmin, mayManageMembers } from "../../lib/admin-access";

const PROJECT_ROLES: ProjectRole[] = ["OWNER", "RESEARCHER", "VIEWER"];
const PROJECTS_SHOWN = 200;

/** Runs a mutation and reports its outcome: the server's message when it refused. */
function useAction(onDone: () => void): [ActionOutcome, (run: () => Promise<{ error?: Parameters<typeof errorMessage>[0] }>, done: string) => Promise<boolean>] {
  const [outcome, setOutcome] = useState<ActionOutcome>(null);
  const act = async (run: () => Promise<{ error?: Parameters<typeof errorMessage>[0] }>, done: string) => {
    setOutcome(null);
    const result = await run();
    setOutcome(result.error ? { ok: false, text: errorMessage(result.error) } : { ok: true, text: done });
    onDone();
    return !result.error;
  };
  return [outcome, act];
}

function ProjectCard({ project, manage, admin, onChanged }: { project: ProjectFieldsFragment; manage: boolean; admin: boolean; onChanged(): void }) {
  const [outcome, act] = useAction(onChanged);
  const [subject, setSubject] = useState("");
  const [role, setRole] = useState<ProjectRole>("RESEARCHER");
  const [nodeId, setNodeId] = useState("");
  const [, addMember] = useMutation(AddProjectMemberMutation);
  const [, setMemberRole] = useMutation(SetProjectMemberRoleMutation);
  const [, removeMember] = useMutation(RemoveProjectMemberMutation);
  const [, addNode] = useMutation(AddProjectNodeMutation);
  const [, removeNode] = useMutation(RemoveProjectNodeMutation);
  const p = project.id;

  const submitMember = async (event: FormEvent) => {
    event.preventDefault();
    if (await act(() => addMember({ project: p, subject: subject.trim(), role }), `Added ${subject.trim()} as ${role}.`)) setSubject("");
  };
  const submitNode = async (event: FormEvent) => {
    event.preventDefault();
    if (await act(() => addNode({ project: p, nodeId: nodeId.trim() }), `Added node ${nodeId.trim()}.`)) setNodeId("");
  };

  return (
    <article className="panel" aria-labelledby={`project-${p}`} data-project={project.name}>
      <h2 id={`project-${p}`}>{project.name}</h2>
      {project.description && <p>{project.description}</p>}
      <p className="muted">
        Created <Time value={project.createdAt} /> by {project.createdBy}
      </p>
      <ActionMessage outcome={outcome} />
      <table className="grid" data-testid="members">
        <caption>Members</caption>
        <TableHead columns={["Subject", "Role", "Added", ""]} />
        <tbody>
          {project.members.map((m) => (
            <tr key={m.subject} data-member={m.subject}>
              <th scope="row">{m.subject}</th>
              <td>
                {manage ? (
                  <select
                    aria-label={`Role of ${m.subject}`}
                    value={m.role}
                    onChange={(e) => act(() => setMemberRole({ project: p, subject: m.subject, role: e.target.value as ProjectRole }), `${m.subject} is now ${e.target.value}.`)}
                  >
                    {PROJECT_ROLES.map((r) => (
                      <option key={r}>{r}</option>
                    ))}
                  </select>
                ) : (
                  m.role
                )}
              </td>
              <td>
                <Time value={m.addedAt} />
              </td>
              <td>
                {manage && (
                  <button type="button" aria-label={`Remove ${m.subject}`} onClick={() => act(() => removeMember({ project: p, subject: m.subject }), `Removed ${m.subject}.`)}>
                    Remove
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {manage && (
        <form className="inline-form" onSubmit={submitMember} aria-label={`Add a member to ${project.name}`}>
          <label>
            Subject <input value={subject} onChange={(e) => setSubject(e.target.value)} required />
          </label>
          <label>
            Role{" "}
            <select value={role} onChange={(e) => setRole(e.target.value as ProjectRole)}>
              {PROJECT_ROLES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </label>
          <button type="submit">Add member</button>
        </form>
      )}
      <h3>Nodes</h3>
      {project.nodeIds.length === 0 ? (
        <p className="muted">No nodes: the project's workflows cannot run anywhere yet.</p>
      ) : (
        <ul className="chips" data-testid="project-nodes">
          {project.nodeIds.map((n) => (
            <li key={n}>
              {n}{" "}
              {admin && (
                <button type="button" aria-label={`Remove node ${n} from ${project.name}`} onClick={() => act(() => removeNode({ project: p, nodeId: n }), `Removed node ${n}.`)}>
                  ×
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {admin && (
        <form className="inline-form" onSubmit={submitNode} aria-label={`Add a node to ${project.name}`}>
          <label>
            Node id <input value={nodeId} onChange={(e) => setNodeId(e.target.value)} required />
          </label>
          <button type="submit">Add node</button>
        </form>
      )}
    </article>
  );
}

function CreateProjectForm({ onCreated }: { onCreated(): void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [, create] = useMutation(CreateProjectMutation);
  const [outcome, act] = useAction(onCreated);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (await act(() => create({ input: { name: name.trim(), description: description.trim() || null } }), `Created project ${name.trim()}.`)) {
      setName("");
      setDescription("");
    }
  };
  return (
    <form className="panel form" onSubmit={submit} aria-labelledby="new-project-title">
      <h2 id="new-project-title">New project</h2>
      <label>
        Name (2–63 lowercase letters, digits and -) <input value={name} onChange={(e) => setName(e.target.value)} required />
      </label>
      <label>
        Description (optional) <input value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      <button type="submit">Create project</button>
      <ActionMessage outcome={outcome} />
    </form>
  );
}

export function ProjectsPage() {
  const [access] = useQuery({ query: AccessQuery });
  const [projects, refetch] = useQuery({ query: ProjectsQuery, variables: { first: PROJECTS_SHOWN } });
  const reload = () => refetch({ requestPolicy: "network-only" });
  const me = access.data?.me;
  const admin = isAdmin(me);
  const list = projects.data?.projects.nodes ?? [];
  return (
    <section aria-labelledby="projects-title">
      <h1 id="projects-title">Projects</h1>
      {admin && <CreateProjectForm onCreated={reload} />}
      <Status fetching={projects.fetching} error={projects.error} what="projects" />
      {projects.data && list.length === 0 && <p>No projects yet.</p>}
      {list.map((project) => (
        <ProjectCard key={project.id} project={project} manage={mayManageMembers(me, project.id)} admin={admin} onChanged={reload} />
      ))}
    </section>
  );
}
