import { Field, ID, ObjectType } from "type-graphql";
import { ConnectionType } from "../graphql/connection.js";
import { LogLine } from "./log-line.entity.js";

@ObjectType({ description: "Log lines delivered together; lines are in seq order with no gap." })
export class LogBatch {
  @Field(() => ID) runId!: string;
  @Field(() => [LogLine]) lines!: LogLine[];
}

export const LogLineConnection = ConnectionType(LogLine, "LogLine");
