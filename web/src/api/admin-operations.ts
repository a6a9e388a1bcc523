/**
 * The operations of the accounting, token and administration pages, typed from
 * schema/schema.graphql into src/gql-admin/ (see codegen.ts): only the pages loaded on demand import this.
 */
import { graphql } from "../gql-admin";

/** Runs the caller's accounting counts ended: the page reads `accounting` again. */
export const AccountingUpdatedSubscription = graphql(`
  subscription AccountingUpdated {
    accountingUpdated {
      finishedRuns
      at
    }
  }
`);

export const AccountingQuery = graphql(`
  query Accounting($filter: AccountingFilter) {
    accounting(groupBy: [DAY, NODE, TOOL, USER], filter: $filter) {
      day
      node
      tool
      user
      runs
      succeeded
      failed
      cancelled
      wallMs
      cpuUserMs
      cpuSystemMs
      maxPeakRssBytes
      logBytes
      outputBytes
      releasedBytes
    }
  }
`);

export const RegisterNodeMutation = graphql(`
  mutation RegisterNode($input: RegisterNodeInput!) {
    registerNode(input: $input) {
      credential
      node {
        id
        name
        capacity
      }
    }
  }
`);

export const OrchestratorPublicKeyQuery = graphql(`
  query OrchestratorPublicKey {
    orchestratorPublicKey
  }
`);

export const ToolsQuery = graphql(`
  query Tools($first: Int!) {
    tools(first: $first) {
      nodes {
        id
        ref
        executable
        launcher
        digest
        createdAt
      }
    }
  }
`);

export const RegisterToolMutation = graphql(`
  mutation RegisterTool($input: RegisterToolInput!) {
    registerTool(input: $input) {
      id
      ref
      digest
    }
  }
`);

graphql(`
  fragment ProjectFields on Project {
    id
    name
    description
    createdAt
    createdBy
    nodeIds
    members {
      subject
      role
      addedAt
    }
  }
`);

export const ProjectsQuery = graphql(`
  query Projects($first: Int!) {
    projects(first: $first) {
      nodes {
        ...ProjectFields
      }
    }
  }
`);

export const CreateProjectMutation = graphql(`
  mutation CreateProject($input: CreateProjectInput!) {
    createProject(input: $input) {
      ...ProjectFields
    }
  }
`);

export const AddProjectMemberMutation = graphql(`
  mutation AddProjectMember($project: ID!, $subject: String!, $role: ProjectRole!) {
    addProjectMember(project: $project, subject: $subject, role: $role) {
      subject
    }
  }
`);

export const SetProjectMemberRoleMutation = graphql(`
  mutation SetProjectMemberRole($project: ID!, $subject: String!, $role: ProjectRole!) {
    setProjectMemberRole(project: $project, subject: $subject, role: $role) {
      subject
      role
    }
  }
`);

export const RemoveProjectMemberMutation = graphql(`
  mutation RemoveProjectMember($project: ID!, $subject: String!) {
    removeProjectMember(project: $project, subject: $subject) {
      id
    }
  }
`);

export const AddProjectNodeMutation = graphql(`
  mutation AddProjectNode($project: ID!, $nodeId: ID!) {
    addProjectNode(project: $project, nodeId: $nodeId) {
      id
    }
  }
`);

export const RemoveProjectNodeMutation = graphql(`
  mutation RemoveProjectNode($project: ID!, $nodeId: ID!) {
    removeProjectNode(project: $project, nodeId: $nodeId) {
      id
    }
  }
`);

export const ApiTokensQuery = graphql(`
  query ApiTokens {
    apiTokens {
      id
      name
      prefix
      roles
      createdAt
      expiresAt
      lastUsedAt
      revokedAt
    }
  }
`);

export const CreateApiTokenMutation = graphql(`
  mutation CreateApiToken($input: CreateApiTokenInput!) {
    createApiToken(input: $input) {
      token
      apiToken {
        id
        name
      }
    }
  }
`);

export const RevokeApiTokenMutation = graphql(`
  mutation RevokeApiToken($id: ID!) {
    revokeApiToken(id: $id) {
      id
      revokedAt
    }
  }
`);

export const AuditEventsQuery = graphql(`
  query AuditEvents($first: Int!, $after: String, $filter: AuditEventFilter) {
    auditEvents(first: $first, after: $after, filter: $filter) {
      nodes {
        id
        at
        actor
        action
        target
        outcome
        requestId
        details
      }
      pageInfo {
        endCursor
        hasNextPage
      }
    }
  }
`);

export const DeadLettersQuery = graphql(`
  query DeadLetters($first: Int!, $after: String) {
    deadLetters(first: $first, after: $after) {
      nodes {
        id
        receivedAt
        queue
        routingKey
        reason
        deliveryCount
        messageId
        body
      }
      pageInfo {
        endCursor
        hasNextPage
      }
    }
  }
`);
