import { Arg, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ForbiddenError, GlobalRole, isAdmin, NotFoundError } from "../kernel/index.js";
import { ApiToken } from "./api-token.entity.js";
import { createApiToken, listApiTokens, revokeApiToken } from "./api-token.service.js";
import { ApiTokenCreated, CreateApiTokenInput, Me, RoleGrants } from "./auth.types.js";
import { User } from "./user.entity.js";
import { grantRole, revokeRole } from "./viewer.service.js";

@Resolver()
export class AuthResolver {
  @Query(() => Me, { description: "The caller: subject, roles, projects and operated nodes." })
  me(@Ctx() ctx: Context): Me {
    const viewer = ctx.viewer();
    return {
      subject: viewer.subject,
      name: ctx.identity?.name ?? null,
      email: ctx.identity?.email ?? null,
      via: ctx.identity?.via ?? "api-token",
      roles: [...viewer.roles].sort(),
      memberships: [...viewer.projects].map(([projectId, role]) => ({ projectId, role })),
      operatedNodes: [...viewer.operatedNodes].sort(),
    };
  }

  @Query(() => [ApiToken], { description: "The caller's own API tokens, newest first (hashes are never shown)." })
  async apiTokens(@Ctx() ctx: Context): Promise<ApiToken[]> {
    return listApiTokens(ctx.orm.em.fork(), ctx.viewer().subject);
  }

  @Query(() => [User], { description: "Everyone who signed in through the identity provider (ADMIN)." })
  async users(@Ctx() ctx: Context): Promise<User[]> {
    return ctx.orm.em.fork().find(User, {}, { orderBy: { subject: "asc" }, limit: 1_000 });
  }

  @Mutation(() => ApiTokenCreated, { description: "Creates an API token acting as the caller, with at most the caller's global roles." })
  async createApiToken(@Arg("input", () => CreateApiTokenInput) input: CreateApiTokenInput, @Ctx() ctx: Context): Promise<ApiTokenCreated> {
    const viewer = ctx.viewer();
    const roles = input.roles ?? [];
    const beyond = roles.filter((r) => !viewer.roles.has(r));
    if (beyond.length > 0) throw ForbiddenError.action(`create a token with ${beyond.join(", ")}`, "holding that role yourself");
    const { token, record } = await createApiToken(ctx.orm.em.fork(), { name: input.name, ownerSubject: viewer.subject, roles, expiresAt: input.expiresAt ?? null });
    return { token, apiToken: record };
  }

  @Mutation(() => ApiToken, { description: "Revokes an API token at once: one of the caller's own, or any (ADMIN)." })
  async revokeApiToken(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<ApiToken> {
    const viewer = ctx.viewer();
    const em = ctx.orm.em.fork();
    const owned = (await listApiTokens(em, viewer.subject)).some((t) => t.id === id);
    if (!owned && !isAdmin(viewer)) throw NotFoundError.entity("ApiToken", id);
    return revokeApiToken(em, id, viewer.subject);
  }

  @Mutation(() => RoleGrants, { description: "Grants a global role in the orchestrator's database (ADMIN)." })
  async grantRole(@Arg("subject", () => String) subject: string, @Arg("role", () => GlobalRole) role: GlobalRole, @Ctx() ctx: Context): Promise<RoleGrants> {
    return { subject, roles: await grantRole(ctx.orm.em.fork(), ctx.viewer(), subject, role) };
  }

  @Mutation(() => RoleGrants, { description: "Withdraws a role granted in the orchestrator's database (ADMIN); roles from the identity provider's claim stay." })
  async revokeRole(@Arg("subject", () => String) subject: string, @Arg("role", () => GlobalRole) role: GlobalRole, @Ctx() ctx: Context): Promise<RoleGrants> {
    return { subject, roles: await revokeRole(ctx.orm.em.fork(), ctx.viewer(), subject, role) };
  }
}
