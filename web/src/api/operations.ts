/** Every operation the dashboard sends; GraphQL Code Generator types them from schema/schema.graphql (src/gql/). */
import { graphql } from "../gql";

export const MeQuery = graphql(`
  query Me {
    me {
      subject
      roles
      memberships {
        projectId
        role
      }
      operatedNodes
    }
  }
`);

graphql(`
  fragment NodeFields on Node {
    id
    name
    connectivity
    adminState
    lastHeartbeatAt
    capacity
    activeRuns
    labels
    health {
      cpus
      loadAvg1
      memoryFreeBytes
      memoryTotalBytes
      diskFreeBytes
      agentVersion
    }
  }
`);

export const NodesQuery = graphql(`
  query Nodes {
    nodes(first: 500) {
      nodes {
        ...NodeFields
      }
    }
  }
`);

export const NodeUpdatedSubscription = graphql(`
  subscription NodeUpdated {
    nodeUpdated {
      ...NodeFields
    }
  }
`);

graphql(`
  fragment WorkflowFields on Workflow {
    id
    name
    state
    submittedAt
    submittedBy
    projectId
    tasks {
      id
      key
      state
      dependsOn {
        id
      }
      runs {
        id
        attempt
        state
        node {
          id
        }
      }
    }
  }
`);

export const WorkflowsQuery = graphql(`
  query Workflows($first: Int!, $filter: WorkflowFilter) {
    workflows(first: $first, filter: $filter) {
      nodes {
        ...WorkflowFields
      }
    }
  }
`);

/** Announces new workflows; the list asks its query again, so its own filters decide whether they show. */
export const WorkflowSubmittedSubscription = graphql(`
  subscription WorkflowSubmitted($project: ID) {
    workflowSubmitted(project: $project) {
      id
    }
  }
`);

export const WorkflowQuery = graphql(`
  query Workflow($id: ID!) {
    workflow(id: $id) {
      ...WorkflowFields
    }
  }
`);

export const WorkflowEventsSubscription = graphql(`
  subscription WorkflowEvents($workflowId: ID!) {
    workflowEvents(workflowId: $workflowId) {
      kind
      state
      taskId
      runId
      run {
        id
        attempt
        node {
          id
        }
        task {
          id
        }
      }
    }
  }
`);

graphql(`
  fragment ArtifactFields on Artifact {
    id
    path
    sizeBytes
    sha256
    state
    releasePolicy
    reason
    decidedBy
    decidedAt
    comment
    downloadUrl
  }
`);

graphql(`
  fragment RunFields on Run {
    id
    state
    attempt
    argv
    exitCode
    failureReason
    message
    createdAt
    queuedAt
    dispatchedAt
    acceptedAt
    startedAt
    finishedAt
    logLineCount
    result
    node {
      id
    }
    usage {
      wallMs
      cpuUserMs
      cpuSystemMs
      peakRssBytes
      logBytes
      outputBytes
    }
    outputs {
      ...ArtifactFields
    }
  }
`);

export const RunQuery = graphql(`
  query Run($id: ID!) {
    run(id: $id) {
      ...RunFields
    }
  }
`);

/**
 * The run's task and workflow, asked apart from the run: an operator of the run's node who is not
 * in the workflow's project may read the run but not its task (NOT_FOUND), and still sees the run.
 */
export const RunTaskQuery = graphql(`
  query RunTask($id: ID!) {
    run(id: $id) {
      id
      task {
        id
        key
        workflow {
          id
          name
          projectId
        }
      }
    }
  }
`);

export const RunUpdatedSubscription = graphql(`
  subscription RunUpdated($runId: ID!) {
    runUpdated(runId: $runId) {
      ...RunFields
    }
  }
`);

/** The run's outputs, whole, each time one changes release state (decided, transferring, stored…). */
export const RunOutputsUpdatedSubscription = graphql(`
  subscription RunOutputsUpdated($runId: ID!) {
    runOutputsUpdated(runId: $runId) {
      ...ArtifactFields
    }
  }
`);

export const RunLogsSubscription = graphql(`
  subscription RunLogs($runId: ID!, $afterSeq: Int) {
    runLogs(runId: $runId, afterSeq: $afterSeq) {
      lines {
        seq
        stream
        at
        text
      }
    }
  }
`);

export const RunLogsQuery = graphql(`
  query RunLogsPage($runId: ID!, $afterSeq: Int, $first: Int) {
    runLogs(runId: $runId, afterSeq: $afterSeq, first: $first) {
      nodes {
        seq
        stream
        at
        text
      }
    }
  }
`);

export const ProjectNamesQuery = graphql(`
  query ProjectNames {
    projects(first: 200) {
      nodes {
        id
        name
      }
    }
  }
`);
