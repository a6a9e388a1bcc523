import { Field, Float, ObjectType } from "type-graphql";

@ObjectType({ description: "What a run used. Times in milliseconds, sizes in bytes." })
export class Usage {
  @Field(() => Float, { nullable: true }) wallMs!: number | null;
  @Field(() => Float, { nullable: true }) cpuUserMs!: number | null;
  @Field(() => Float, { nullable: true }) cpuSystemMs!: number | null;
  @Field(() => Float, { nullable: true }) peakRssBytes!: number | null;
  @Field(() => Float, { nullable: true }) logBytes!: number | null;
  @Field(() => Float, { nullable: true, description: "Size of the run's directory when it ended, as its node measured it (input files left out)." })
  outputBytes!: number | null;
  /** Bytes of the run's output files that left its node: resolved by the artifacts domain (`releasedBytes`). */
  releasedBytes?: number;
  /** The run this usage is of; not a GraphQL field. */
  runId!: string;
}
