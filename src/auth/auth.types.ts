import { Field, ID, InputType, ObjectType } from "type-graphql";
import { GlobalRole, ProjectRole } from "../kernel/index.js";
import { ApiToken } from "./api-token.entity.js";

@ObjectType({ description: "One of the caller's projects and the caller's role in it." })
export class Membership {
  @Field(() => ID) projectId!: string;
  @Field(() => ProjectRole) role!: ProjectRole;
}

@ObjectType({ description: "The caller as the orchestrator sees it." })
export class Me {
  @Field(() => String) subject!: string;
  @Field(() => String, { nullable: true }) name!: string | null;
  @Field(() => String, { nullable: true }) email!: string | null;
  @Field(() => String, { description: "oidc or api-token." }) via!: string;
  @Field(() => [GlobalRole]) roles!: GlobalRole[];
  @Field(() => [Membership]) memberships!: Membership[];
  @Field(() => [ID], { description: "Nodes the caller operates." }) operatedNodes!: string[];
}

@InputType()
export class CreateApiTokenInput {
  @Field(() => String, { description: "1-100 characters, to tell tokens apart." }) name!: string;
  @Field(() => Date, { nullable: true, description: "Null: never expires." }) expiresAt?: Date | null;
  @Field(() => [GlobalRole], { nullable: true, description: "Global roles the token carries: at most the caller's own. Default none." }) roles?: GlobalRole[] | null;
}

@ObjectType()
export class ApiTokenCreated {
  @Field(() => String, { description: "The token: shown only here, stored only as a hash. Send it as Authorization: Bearer <token>." }) token!: string;
  @Field(() => ApiToken) apiToken!: ApiToken;
}

@ObjectType({ description: "The global roles granted to a subject in the orchestrator's database." })
export class RoleGrants {
  @Field(() => String) subject!: string;
  @Field(() => [GlobalRole]) roles!: GlobalRole[];
}
