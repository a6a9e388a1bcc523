import { Field, ID, InputType, Int, ObjectType } from "type-graphql";
import { ConnectionType } from "../graphql/connection.js";
import { AuditEvent, AuditOutcome } from "./audit-event.entity.js";

@InputType({ description: "Audit events matching every given field." })
export class AuditEventFilter {
  @Field(() => String, { nullable: true }) actor?: string | null;
  @Field(() => String, { nullable: true }) action?: string | null;
  @Field(() => String, { nullable: true }) target?: string | null;
  @Field(() => AuditOutcome, { nullable: true }) outcome?: AuditOutcome | null;
  @Field(() => String, { nullable: true }) requestId?: string | null;
}

@ObjectType({ description: "The result of recomputing the audit log's hash chain." })
export class AuditChainReport {
  @Field(() => Boolean) intact!: boolean;
  @Field(() => Int, { description: "Rows checked, the broken one included." }) checked!: number;
  @Field(() => ID, { nullable: true, description: "The first row whose hash or link to the row before does not hold." }) firstBrokenId!: string | null;
  @Field(() => String, { nullable: true }) reason!: string | null;
  @Field(() => ID, { nullable: true, description: "The newest row that holds; keep it with lastHash elsewhere to detect a truncated tail later." }) lastId!: string | null;
  @Field(() => String, { nullable: true }) lastHash!: string | null;
}

export const AuditEventConnection = ConnectionType(AuditEvent, "AuditEvent");
