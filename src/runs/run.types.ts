import { Field, Float, ObjectType } from "type-graphql";

@ObjectType({ description: "What a run used. Times in milliseconds, sizes in bytes." })
export class Usage {
  @Field(() => Float, { nullable: true }) wallMs!: number | null;
  @Field(() => Float, { nullable: true }) cpuUserMs!: number | null;
  @Field(() => Float, { nullable: true }) cpuSystemMs!: number | null;
  @Field(() => Float, { nullable: true }) peakRssBytes!: number | null;
  @Field(() => Float, { nullable: true }) logBytes!: number | null;
  @Field(() => Float, { nullable: true }) outputBytes!: number | null;
}
