import { Entity, ManyToOne, PrimaryKey, Property } from "@mikro-orm/core";
import { Run } from "../runs/run.entity.js";
import { LogStream } from "../runs/run-state.js";

/** One line a run printed; `seq` is gap-free and increasing per run. Written in bulk by ingestion. */
@Entity({ tableName: "log_line" })
export class LogLine {
  @ManyToOne(() => Run, { primary: true, mapToPk: true, fieldName: "run_id", deleteRule: "cascade" })
  runId!: string;

  @PrimaryKey({ type: "integer" })
  seq!: number;

  @Property({ type: "text" })
  stream!: LogStream;

  @Property({ type: "datetime" })
  at!: Date;

  @Property({ type: "text" })
  text!: string;
}
