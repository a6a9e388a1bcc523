/** Builds the executable schema from every resolver. */
import { GraphQLDateTime } from "graphql-scalars";
import type { GraphQLSchema } from "graphql";
import { buildSchema } from "type-graphql";
import { createPubSub, type PubSub } from "../live/pubsub.js";
import { AccountingResolver } from "../accounting/accounting.resolver.js";
import { LogResolver } from "../logs/log.resolver.js";
import { NodeResolver } from "../nodes/node.resolver.js";
import { DeadLetterResolver } from "../operations/dead-letter.resolver.js";
import { RunResolver } from "../runs/run.resolver.js";
import { ToolResolver } from "../tools/tool.resolver.js";
import { TaskResolver } from "../workflows/task.resolver.js";
import { WorkflowResolver } from "../workflows/workflow.resolver.js";

export const resolvers = [NodeResolver, ToolResolver, WorkflowResolver, TaskResolver, RunResolver, LogResolver, DeadLetterResolver, AccountingResolver] as const;

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
