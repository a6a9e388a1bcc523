/**
 * Deny by default: every root field (query, mutation, subscription) has a rule here, checked
 * before execution on both transports; a field without a rule is refused. Rules say who may call
 * an operation at all; what a caller may see or change inside it (its projects, its nodes) the
 * services decide with the caller's Viewer.
 */
import { GraphQLError, Kind, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from "graphql";
import { ForbiddenError, isAdmin, UnauthenticatedError, type Viewer } from "../kernel/index.js";

/** `signedIn`: any authenticated caller (the service scopes what it sees); `admin`: ADMIN only. */
export type Rule = "signedIn" | "admin";

export const RULES: Readonly<Record<string, Rule>> = {
  // Reading: scoped by the services to the caller's projects and nodes.
  "Query.me": "signedIn",
  "Query.orchestratorPublicKey": "signedIn",
  "Query.node": "signedIn",
  "Query.nodes": "signedIn",
  "Query.tool": "signedIn",
  "Query.tools": "signedIn",
  "Query.workflow": "signedIn",
  "Query.workflows": "signedIn",
  "Query.task": "signedIn",
  "Query.run": "signedIn",
  "Query.runLogs": "signedIn",
  "Query.accounting": "signedIn",
  "Query.project": "signedIn",
  "Query.projects": "signedIn",
  "Query.apiTokens": "signedIn",
  "Query.deadLetters": "admin",
  "Query.auditEvents": "admin",
  "Query.auditChain": "admin",
  "Query.users": "admin",
  // Work: the service checks the caller's role in the workflow's project.
  "Mutation.submitWorkflow": "signedIn",
  "Mutation.cancelWorkflow": "signedIn",
  "Mutation.cancelTask": "signedIn",
  "Mutation.retryTask": "signedIn",
  // Nodes: operators may drain or disable their own nodes (checked by the service).
  "Mutation.registerNode": "admin",
  "Mutation.setNodeAdminState": "signedIn",
  "Mutation.rotateNodeCredential": "signedIn",
  "Mutation.grantNodeOperator": "admin",
  "Mutation.revokeNodeOperator": "admin",
  "Mutation.removeNode": "admin",
  "Mutation.registerTool": "admin",
  // Outputs: an operator of the artifact's node, or ADMIN, unless the node decides locally (checked by the service).
  "Mutation.decideArtifactRelease": "signedIn",
  // Projects: OWNERs manage their members (checked by the service).
  "Mutation.createProject": "admin",
  "Mutation.addProjectMember": "signedIn",
  "Mutation.setProjectMemberRole": "signedIn",
  "Mutation.removeProjectMember": "signedIn",
  "Mutation.addProjectNode": "admin",
  "Mutation.removeProjectNode": "admin",
  // Identities: everyone manages their own tokens; roles are the administrators'.
  "Mutation.createApiToken": "signedIn",
  "Mutation.revokeApiToken": "signedIn",
  "Mutation.grantRole": "admin",
  "Mutation.revokeRole": "admin",
  // Live: each subscription checks, at subscribe time, that the caller may read what it follows.
  "Subscription.runUpdated": "signedIn",
  "Subscription.runOutputsUpdated": "signedIn",
  "Subscription.accountingUpdated": "signedIn",
  "Subscription.workflowEvents": "signedIn",
  "Subscription.workflowSubmitted": "signedIn",
  "Subscription.runLogs": "signedIn",
  "Subscription.taskLogs": "signedIn",
  "Subscription.nodeUpdated": "signedIn",
};

const ROOT_TYPES: Record<OperationDefinitionNode["operation"], string> = { query: "Query", mutation: "Mutation", subscription: "Subscription" };

/** The root fields an operation selects, through fragments and inline fragments. */
export function rootFields(document: DocumentNode, operation: OperationDefinitionNode): string[] {
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  const names = new Set<string>();
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode): void => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) names.add(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) walk(fragment.selectionSet);
      }
    }
  };
  walk(operation.selectionSet);
  return [...names];
}

/**
 * Checks every root field of the operation against its rule. Returns the error to answer with
 * (UNAUTHENTICATED for an anonymous caller, FORBIDDEN otherwise), or null when all are allowed.
 */
export function authorizeOperation(document: DocumentNode, operation: OperationDefinitionNode, viewer: Viewer | null): UnauthenticatedError | ForbiddenError | null {
  const root = ROOT_TYPES[operation.operation];
  for (const field of rootFields(document, operation)) {
    if (field === "__typename") continue;
    const rule = field.startsWith("__") ? "signedIn" : RULES[`${root}.${field}`];
    if (!viewer) return UnauthenticatedError.because(`${root}.${field} needs a signed-in caller: send Authorization: Bearer <token>`);
    if (rule === undefined) return ForbiddenError.action(`call ${root}.${field}`, "a rule (none is defined, so it is denied)");
    if (rule === "admin" && !isAdmin(viewer)) return ForbiddenError.action(`call ${root}.${field}`, "ADMIN");
  }
  return null;
}

/** The GraphQL error Apollo answers with; UNAUTHENTICATED carries HTTP 401 and a Bearer challenge. */
export function toHttpError(error: UnauthenticatedError | ForbiddenError): GraphQLError {
  const unauthenticated = error instanceof UnauthenticatedError;
  return new GraphQLError(error.message, {
    originalError: error,
    extensions: {
      code: error.code,
      http: unauthenticated ? { status: 401, headers: new Map([["www-authenticate", 'Bearer realm="fem"']]) } : { status: 403 },
    },
  });
}
