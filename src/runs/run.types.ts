import { Field, Float, ID, Int, ObjectType } from "type-graphql";
import { ConnectionType } from "../graphql/connection.js";
import { LogStream } from "./run-state.js";

@ObjectType({ description: "What a run used. Times in milliseconds, sizes in bytes." })
export class Usage {
  @Field(() => Float, { nullable: true }) wallMs!: number | null;
  @Field(() => Float, { nullable: true }) cpuUserMs!: number | null;
  @Field(() => Float, { nullable: true }) cpuSystemMs!: number | null;
  @Field(() => Float, { nullable: true }) peakRssBytes!: number | null;
  @Field(() => Float, { nullable: true }) logBytes!: number | null;
  @Field(() => Float, { nullable: true }) outputBytes!: number | null;
}

@ObjectType()
export class LogLine {
  @Field(() => ID) runId!: string;
  @Field(() => Int, { description: "Gap-free, increasing per run, from 1." }) seq!: number;
  @Field(() => LogStream) stream!: LogStream;
  @Field(() => Date) at!: Date;
  @Field(() => String) text!: string;
}

@ObjectType({ description: "Log lines delivered together; lines are in seq order with no gap." })
export class LogBatch {
  @Field(() => ID) runId!: string;
  @Field(() => [LogLine]) lines!: LogLine[];
}

export const LogLineConnection = ConnectionType(LogLine, "LogLine");
