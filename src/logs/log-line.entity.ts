import { Entity, ManyToOne, PrimaryKey, Property } from "@mikro-orm/core";
import { Field, ID, Int, ObjectType } from "type-graphql";
import { LogStream } from "../kernel/index.js";
import { Run } from "../runs/index.js";

/** One line a run printed; `seq` is gap-free and increasing per run. Written in bulk by ingestion. */
@Entity({ tableName: "log_line" })
@ObjectType()
export class LogLine {
  @ManyToOne(() => Run, { primary: true, mapToPk: true, fieldName: "run_id", deleteRule: "cascade" })
  @Field(() => ID)
  runId!: string;

  @PrimaryKey({ type: "integer" })
  @Field(() => Int, { description: "Gap-free, increasing per run, from 1." })
  seq!: number;

  @Property({ type: "text" })
  @Field(() => LogStream)
  stream!: LogStream;

  @Property({ type: "datetime" })
  @Field(() => Date)
  at!: Date;

  @Property({ type: "text" })
  @Field(() => String)
  text!: string;
}
