/** Relay-style connections: `edges { cursor node }`, `nodes`, `pageInfo`. Cursors are opaque base64url JSON. */
import { Field, ObjectType, type ClassType } from "type-graphql";
import { BadInputError } from "../kernel/index.js";

@ObjectType()
export class PageInfo {
  @Field(() => Boolean) hasNextPage!: boolean;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

export interface ConnectionShape<T> {
  edges: { cursor: string; node: T }[];
  nodes: T[];
  pageInfo: PageInfo;
}

export function ConnectionType<T extends object>(Item: ClassType<T>, name: string): ClassType<ConnectionShape<T>> {
  @ObjectType(`${name}Edge`)
  class Edge {
    @Field(() => String) cursor!: string;
    @Field(() => Item) node!: T;
  }

  @ObjectType(`${name}Connection`)
  class Connection {
    @Field(() => [Edge]) edges!: Edge[];
    @Field(() => [Item], { description: "The items of `edges`, for clients that do not need cursors." }) nodes!: T[];
    @Field(() => PageInfo) pageInfo!: PageInfo;
  }
  return Connection;
}

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** Decodes a cursor made by `encodeCursor`; a damaged one is BAD_USER_INPUT. */
export function decodeCursor<T>(cursor: string | null | undefined, check: (value: unknown) => value is T): T | null {
  if (cursor == null) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (check(value)) return value;
  } catch {
    // fall through to the error below
  }
  throw BadInputError.field("after", "is not a cursor this API returned");
}

export function connection<T>(items: T[], hasNextPage: boolean, cursorOf: (item: T) => unknown): ConnectionShape<T> {
  const edges = items.map((node) => ({ cursor: encodeCursor(cursorOf(node)), node }));
  return { edges, nodes: items, pageInfo: { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
}

/** Page sizes of a connection: `first` defaults to `fallback`; a larger `first` than `max` is refused, not clamped. */
export interface PageLimits {
  fallback: number;
  max: number;
}

/** `nodes`, `tools`, `workflows`, `deadLetters`: 50 by default, at most 500. */
export const LIST_PAGE: PageLimits = { fallback: 50, max: 500 };

/** Page size: `first` within 1..max, default `fallback`; BAD_USER_INPUT naming `first` otherwise. */
export function pageSize(first: number | null | undefined, limits: PageLimits): number {
  if (first == null) return limits.fallback;
  if (!Number.isInteger(first) || first < 1 || first > limits.max) throw BadInputError.field("first", `must be from 1 to ${limits.max}`, { max: limits.max });
  return first;
}

interface CostArgs {
  args: Record<string, unknown>;
  childComplexity: number;
}

/** A connection field's `complexity`: one page (`first`, at most `max`) times the cost of one item. */
export function pageCost(limits: PageLimits): (options: CostArgs) => number {
  return ({ args, childComplexity }) => {
    const first = typeof args.first === "number" && args.first >= 1 ? Math.min(args.first, limits.max) : limits.fallback;
    return 1 + first * childComplexity;
  };
}

/**
 * A plain list's `complexity`, assuming `items` entries (or its `first`, at most `page.max`, when
 * the field takes one): the estimate makes nested lists multiply; their real length is bounded by
 * the input limits (tasks and runs per workflow) or by `first`.
 */
export function listCost(items: number, page?: PageLimits): (options: CostArgs) => number {
  return ({ args, childComplexity }) => {
    const first = page && typeof args.first === "number" && args.first >= 1 ? Math.min(args.first, page.max) : items;
    return 1 + first * childComplexity;
  };
}

