/** Builds the executable schema from every domain's resolvers. */
import { GraphQLDateTime } from "graphql-scalars";
import type { GraphQLSchema } from "graphql";
import { buildSchema } from "type-graphql";
import { createPubSub, type PubSub } from "../live/pubsub.js";
import { AccountingResolver } from "../accounting/index.js";
import { ArtifactResolver, RunOutputsResolver, UsageReleasedResolver } from "../artifacts/index.js";
import { AuthResolver } from "../auth/index.js";
import { AuditEventResolver } from "../audit/index.js";
import { DeadLetterResolver } from "../dead-letters/index.js";
import { LogResolver, RunLogsResolver } from "../logs/index.js";
import { NodeResolver, RunNodeResolver } from "../nodes/index.js";
import { ProjectResolver } from "../projects/index.js";
import { RunResolver } from "../runs/index.js";
import { ToolArgResolver, ToolResolver } from "../tools/index.js";
import { RunTaskResolver, TaskResolver, WorkflowResolver } from "../workflows/index.js";

export const resolvers = [
  NodeResolver,
  ToolResolver,
  ToolArgResolver,
  WorkflowResolver,
  TaskResolver,
  RunResolver,
  RunTaskResolver,
  RunNodeResolver,
  RunLogsResolver,
  LogResolver,
  DeadLetterResolver,
  AccountingResolver,
  AuthResolver,
  ProjectResolver,
  AuditEventResolver,
  RunOutputsResolver,
  UsageReleasedResolver,
  ArtifactResolver,
] as const;

/**
 * Every subscription here streams from its own `subscribe` function; the PubSub handed to
 * type-graphql satisfies its requirement and is otherwise unused.
 */
export async function createSchema(pubSub: PubSub = createPubSub(1)): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers,
    pubSub,
    scalarsMap: [{ type: Date, scalar: GraphQLDateTime }],
    validate: false,
    emitSchemaFile: false,
  });
}
