import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { connection, decodeCursor, LIST_PAGE, pageCost, pageSize } from "../graphql/connection.js";
import { ChangeSet, ResourceAmounts } from "../kernel/index.js";
import { filterEvents } from "../live/pubsub.js";
import { topics } from "../live/topics.js";
import { Run, type RunRecord } from "../runs/index.js";
import { Node, NodeAdminState } from "./node.entity.js";
import { NodeConnection, NodeFilter, NodeRegistration, RegisterNodeInput } from "./node.inputs.js";
import { getNode, grantNodeOperator, listNodes, registerNode, revokeNodeOperator, rotateNodeCredential, setNodeAdminState, validateNodeId, visibleNodeIds } from "./node.service.js";
import { nodeSnapshot } from "./heartbeat.js";
import { removeNode } from "./node-removal.js";

@Resolver(() => Node)
export class NodeResolver {
  @Query(() => String, {
    description: "The orchestrator's Ed25519 public key (SPKI PEM) that signs every dispatch and cancel; node operators pin it (FEM_ORCHESTRATOR_PUBLIC_KEY_FILE).",
  })
  orchestratorPublicKey(@Ctx() ctx: Context): string {
    return ctx.orchestratorPublicKeyPem;
  }

  @Query(() => Node, { description: "One node; NOT_FOUND when it does not exist." })
  async node(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Node> {
    validateNodeId("id", id);
    return getNode(ctx.orm.em.fork(), id, ctx.viewer());
  }

  @Query(() => NodeConnection, { complexity: pageCost(LIST_PAGE) })
  async nodes(
    @Ctx() ctx: Context,
    @Arg("filter", () => NodeFilter, { nullable: true }) filter?: NodeFilter | null,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
    @Arg("after", () => String, { nullable: true }) after?: string | null,
  ) {
    const cursor = decodeCursor(after, (v): v is string => typeof v === "string");
    const { nodes, hasNextPage } = await listNodes(ctx.orm.em.fork(), ctx.viewer(), filter ?? {}, pageSize(first, LIST_PAGE), cursor);
    return connection(nodes, hasNextPage, (n) => n.id);
  }

  @Mutation(() => NodeRegistration, {
    description: "Registers a node and provisions its own broker user; the credential (its broker password) is returned only here.",
  })
  async registerNode(@Arg("input", () => RegisterNodeInput) input: RegisterNodeInput, @Ctx() ctx: Context): Promise<NodeRegistration> {
    const result = await registerNode(ctx.orm.em.fork(), input, ctx.brokerUsers);
    // The relay declares queues before dispatching too; this makes them exist before the agent starts.
    await ctx.declareNodeQueues(result.node.id).catch(() => undefined);
    const changes = new ChangeSet();
    changes.nodes.set(result.node.id, nodeSnapshot(result.node));
    ctx.afterCommit(changes);
    return result;
  }

  @Mutation(() => NodeRegistration, {
    description: "Gives a node a new credential, returned only here (ADMIN or the node's operator); the old one stops working at once and the node's connections are closed.",
  })
  async rotateNodeCredential(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<NodeRegistration> {
    return rotateNodeCredential(ctx.orm.em.fork(), ctx.viewer(), id, ctx.brokerUsers);
  }

  @Mutation(() => Node, { description: "Makes a user an operator of a node (ADMIN): they see its runs and may drain or disable it." })
  async grantNodeOperator(@Arg("nodeId", () => ID) nodeId: string, @Arg("subject", () => String) subject: string, @Ctx() ctx: Context): Promise<Node> {
    return grantNodeOperator(ctx.orm.em.fork(), ctx.viewer(), nodeId, subject);
  }

  @Mutation(() => Node, { description: "Withdraws a user's operation of a node (ADMIN)." })
  async revokeNodeOperator(@Arg("nodeId", () => ID) nodeId: string, @Arg("subject", () => String) subject: string, @Ctx() ctx: Context): Promise<Node> {
    return revokeNodeOperator(ctx.orm.em.fork(), ctx.viewer(), nodeId, subject);
  }

  @Mutation(() => Node, {
    description: "ACTIVE takes work; DRAINING finishes what runs and takes nothing new; DISABLED takes nothing and cuts the node off the broker until it is enabled again.",
  })
  async setNodeAdminState(@Arg("id", () => ID) id: string, @Arg("state", () => NodeAdminState) state: NodeAdminState, @Ctx() ctx: Context): Promise<Node> {
    const { node, changes } = await setNodeAdminState(ctx.orm.em.fork(), ctx.viewer(), id, state, ctx.brokerUsers);
    ctx.afterCommit(changes);
    return node;
  }

  @Mutation(() => Node, {
    description:
      "Removes a node for good (ADMIN): deletes its broker user and queues, takes it out of its projects and hides it from nodes (unless filter.includeRemoved); its runs and accounting stay. CONFLICT while it is ACTIVE or has runs not finished: set it DISABLED and let them end first. Registering the id again brings it back.",
  })
  async removeNode(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Node> {
    validateNodeId("id", id);
    const broker = { remove: (nodeId: string) => ctx.brokerUsers.remove(nodeId), removeQueues: (nodeId: string) => ctx.removeNodeQueues(nodeId) };
    const { node, changes } = await removeNode(ctx.orm.em.fork(), ctx.viewer(), id, broker);
    ctx.afterCommit(changes);
    return node;
  }

  @FieldResolver(() => Int, { description: "Runs handed to the node and not finished (QUEUED once dispatched, ACCEPTED, RUNNING): what counts against its capacity." })
  async activeRuns(@Root() node: Node, @Ctx() ctx: Context): Promise<number> {
    return (await ctx.loaders.nodeResources.load(node.id))?.activeRuns ?? 0;
  }

  @FieldResolver(() => ResourceAmounts, {
    description: "Totals in effect: each registered amount, else what the agent last reported (cpus, memory, GPUs, free disk); null where neither is known, which the scheduler does not limit.",
  })
  async resourceTotals(@Root() node: Node, @Ctx() ctx: Context): Promise<ResourceAmounts> {
    return (await ctx.loaders.nodeResources.load(node.id))?.totals ?? {};
  }

  @FieldResolver(() => ResourceAmounts, { description: "What the runs handed to the node and not finished request, summed." })
  async resourcesInUse(@Root() node: Node, @Ctx() ctx: Context): Promise<ResourceAmounts> {
    return (await ctx.loaders.nodeResources.load(node.id))?.inUse ?? {};
  }

  @FieldResolver(() => ResourceAmounts, { description: "resourceTotals minus resourcesInUse: room for more runs; null where the total is not known." })
  async resourcesFree(@Root() node: Node, @Ctx() ctx: Context): Promise<ResourceAmounts> {
    return (await ctx.loaders.nodeResources.load(node.id))?.free ?? {};
  }

  @Subscription(() => Node, {
    description: "Changes of one node (or of every node when nodeId is omitted): heartbeats, connectivity, admin state.",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const nodeId = args.nodeId as string | null | undefined;
      if (nodeId) {
        validateNodeId("nodeId", nodeId);
        await getNode(ctx.orm.em.fork(), nodeId, ctx.viewer());
        return ctx.pubsub.subscribe(topics.node(nodeId));
      }
      const visible = await visibleNodeIds(ctx.orm.em.fork(), ctx.viewer());
      const all = ctx.pubsub.subscribe<Node>(topics.allNodes);
      return visible === null ? all : filterEvents(all, (node) => visible.has(node.id));
    },
  })
  nodeUpdated(@Root() node: Node, @Arg("nodeId", () => ID, { nullable: true }) _nodeId?: string | null): Node {
    return node;
  }
}

/** The node a run executes on (the Run type is the runs domain's; the link is this domain's). */
@Resolver(() => Run)
export class RunNodeResolver {
  @FieldResolver(() => Node)
  node(@Root() run: RunRecord, @Ctx() ctx: Context): Node | Promise<Node> {
    // Loaded with the runs when they came from the loaders: a value, not a promise per run.
    return (ctx.loaders.loaded.node.get(run.nodeId) ?? ctx.loaders.node.load(run.nodeId)) as Node | Promise<Node>;
  }
}

