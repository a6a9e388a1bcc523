import { Arg, Ctx, Int, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { connection, ConnectionType, decodeCursor, LIST_PAGE, pageCost, pageSize } from "../graphql/connection.js";
import { DeadLetter } from "./dead-letter.entity.js";
import { listDeadLetters } from "./dead-letter.service.js";

const DeadLetterConnection = ConnectionType(DeadLetter, "DeadLetter");

@Resolver(() => DeadLetter)
export class DeadLetterResolver {
  @Query(() => DeadLetterConnection, { description: "Messages the broker dead-lettered, newest first: what operators must look at.", complexity: pageCost(LIST_PAGE) })
  async deadLetters(
    @Ctx() ctx: Context,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
    @Arg("after", () => String, { nullable: true }) after?: string | null,
  ) {
    const cursor = decodeCursor(after, (v): v is string => typeof v === "string" && /^\d+$/.test(v));
    const page = await listDeadLetters(ctx.orm.em.fork(), pageSize(first, LIST_PAGE), cursor);
    return connection(page.items, page.hasNextPage, (d) => String(d.id));
  }
}
