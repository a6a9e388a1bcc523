/** The projects domain: collaborations with member users (by role) and member nodes. */
export { Project, ProjectMember, ProjectNode } from "./project.entity.js";
export { ProjectResolver } from "./project.resolver.js";
export {
  getProject,
  membersOfProjects,
  nodeIdsOfProjects,
  projectForSubmit,
  projectNodeIds,
  removeNodeFromProjects,
} from "./project.service.js";
