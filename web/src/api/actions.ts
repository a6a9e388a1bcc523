/** The mutations behind the existing pages' buttons (typed by GraphQL Code Generator like operations.ts). */
import { graphql } from "../gql";

export const SetNodeAdminStateMutation = graphql(`
  mutation SetNodeAdminState($id: ID!, $state: NodeAdminState!) {
    setNodeAdminState(id: $id, state: $state) {
      ...NodeFields
    }
  }
`);

export const CancelWorkflowMutation = graphql(`
  mutation CancelWorkflow($id: ID!) {
    cancelWorkflow(id: $id) {
      id
      state
    }
  }
`);

export const CancelTaskMutation = graphql(`
  mutation CancelTask($id: ID!) {
    cancelTask(id: $id) {
      id
      state
    }
  }
`);

export const RetryTaskMutation = graphql(`
  mutation RetryTask($id: ID!) {
    retryTask(id: $id) {
      id
      state
    }
  }
`);

export const DecideArtifactReleaseMutation = graphql(`
  mutation DecideArtifactRelease($id: ID!, $decision: ArtifactDecision!, $comment: String) {
    decideArtifactRelease(id: $id, decision: $decision, comment: $comment) {
      ...ArtifactFields
    }
  }
`);
