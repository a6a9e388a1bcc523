import { Field, InputType } from "type-graphql";

@InputType()
export class CreateProjectInput {
  @Field(() => String, { description: "Slug: 2-63 lowercase letters, digits and '-'." }) name!: string;
  @Field(() => String, { nullable: true }) description?: string | null;
}
