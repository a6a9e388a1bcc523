import { Arg, Ctx, ID, Int, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { connection, decodeCursor, LIST_PAGE, pageCost, pageSize } from "../graphql/connection.js";
import { BadInputError } from "../kernel/index.js";
import { AuditEvent } from "./audit-event.entity.js";
import { verifyAuditChain } from "./audit-chain.js";
import { AuditChainReport, AuditEventConnection, AuditEventFilter } from "./audit.inputs.js";
import { listAuditEvents } from "./audit.service.js";

const DEFAULT_VERIFY_ROWS = 100_000;
const MAX_VERIFY_ROWS = 1_000_000;
const isId = (v: unknown): v is string => typeof v === "string" && /^\d{1,18}$/.test(v);

@Resolver(() => AuditEvent)
export class AuditEventResolver {
  @Query(() => AuditEventConnection, { description: "The audit log, newest first: every mutation's outcome and every denial. ADMIN only.", complexity: pageCost(LIST_PAGE) })
  async auditEvents(
    @Ctx() ctx: Context,
    @Arg("filter", () => AuditEventFilter, { nullable: true }) filter?: AuditEventFilter | null,
    @Arg("first", () => Int, { nullable: true }) first?: number | null,
    @Arg("after", () => String, { nullable: true }) after?: string | null,
  ) {
    const cursor = decodeCursor(after, isId);
    const page = await listAuditEvents(ctx.orm.em.fork(), filter ?? {}, pageSize(first, LIST_PAGE), cursor);
    return connection(page.items, page.hasNextPage, (e) => String(e.id));
  }

  @Query(() => AuditChainReport, {
    description: "Recomputes the audit log's hash chain from fromId (default: the first row) over at most limit rows (default 100000) and names the first row edited, deleted or reordered. ADMIN only.",
  })
  async auditChain(
    @Ctx() ctx: Context,
    @Arg("fromId", () => ID, { nullable: true }) fromId?: string | null,
    @Arg("limit", () => Int, { nullable: true }) limit?: number | null,
  ): Promise<AuditChainReport> {
    if (fromId != null && !isId(fromId)) throw BadInputError.field("fromId", "is not an audit event id");
    const rows = limit ?? DEFAULT_VERIFY_ROWS;
    if (!Number.isInteger(rows) || rows < 1 || rows > MAX_VERIFY_ROWS) throw BadInputError.field("limit", `must be from 1 to ${MAX_VERIFY_ROWS}`);
    return verifyAuditChain(ctx.orm.em.fork(), { fromId, limit: rows });
  }
}
