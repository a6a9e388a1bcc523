/**
 * The one place mutations are audited: after a mutation has run (over HTTP through the Apollo
 * plugin, over WebSocket through `createWsAuditor`), one record per top-level mutation field goes to
 * the injected `RecordMutation`. Queries and subscriptions are not recorded. The context's request
 * id goes back in the `x-request-id` header and is stored with the records.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import {
  getArgumentValues,
  getNamedType,
  getOperationAST,
  isObjectType,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionArgs,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLSchema,
  type GraphQLType,
  type SelectionSetNode,
} from "graphql";
import type { Logger } from "../logger.js";
import { toError } from "../shared/index.js";

export const REQUEST_ID_HEADER = "x-request-id";

export type MutationOutcome = "OK" | "FAILED" | "DENIED" | "UNAUTHENTICATED";

export interface MutationRecord {
  actor: string;
  /** The mutation's field name. */
  action: string;
  /** `kind:id` of what the mutation returned (or of its `id` argument), when that is simple to tell. */
  target: string | null;
  outcome: MutationOutcome;
  requestId: string;
  details: Record<string, unknown>;
}

/** Stores one record durably; the audit domain provides it. */
export type RecordMutation = (record: MutationRecord) => Promise<void>;

interface ResultShape {
  data?: Record<string, unknown> | null;
  errors?: readonly { path?: readonly (string | number)[]; extensions?: Record<string, unknown> }[];
}

export interface OperationOutcomeInput {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName: string | null | undefined;
  variables: Record<string, unknown> | null | undefined;
  /** The result as sent, errors already formatted (so masked errors count as INTERNAL). */
  result: ResultShape;
  requestId: string;
  actor: string;
}

/** What the plugin needs of the context. */
interface AuditedContext {
  requestId: string;
  viewerOrNull?: { subject: string } | null;
}

/** The caller's subject, or `anonymous`. */
function actorOf(context: AuditedContext): string {
  return context.viewerOrNull?.subject ?? "anonymous";
}

function outcomeOf(code: unknown): MutationOutcome {
  if (code === "UNAUTHENTICATED") return "UNAUTHENTICATED";
  if (code === "FORBIDDEN") return "DENIED";
  return "FAILED";
}

/** `Node`, `site-a` → `node:site-a`. */
const targetName = (typeName: string, id: string | number): string => `${typeName.charAt(0).toLowerCase()}${typeName.slice(1)}:${id}`;

const isScalarId = (v: unknown): v is string | number => typeof v === "string" || typeof v === "number";

/** `kind:id` from the returned object's `id`, or from its one selected child object that has an id (e.g. `registerNode { node { id } }`). */
function targetFromResult(type: GraphQLType, field: FieldNode, value: unknown, depth = 0): string | null {
  const named = getNamedType(type);
  if (!isObjectType(named) || value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const children = (field.selectionSet?.selections ?? []).filter((s): s is FieldNode => s.kind === Kind.FIELD);
  const record = value as Record<string, unknown>;
  const idKey = children.find((c) => c.name.value === "id");
  const id = idKey ? record[idKey.alias?.value ?? "id"] : undefined;
  if (isScalarId(id)) return targetName(named.name, id);
  if (depth > 0) return null;
  const fields = named.getFields();
  const nested = children
    .filter((c) => fields[c.name.value])
    .map((c) => targetFromResult(fields[c.name.value].type, c, record[c.alias?.value ?? c.name.value], depth + 1))
    .filter((t): t is string => t !== null);
  return nested.length === 1 ? nested[0] : null;
}

/** `kind:id` from an `id` argument, when the field returns an object type that has an id. */
function targetFromArgs(def: GraphQLField<unknown, unknown>, field: FieldNode, variables: Record<string, unknown>): string | null {
  const named = getNamedType(def.type);
  if (!isObjectType(named) || !named.getFields().id || !def.args.some((a) => a.name === "id")) return null;
  try {
    const id = getArgumentValues(def, field, variables).id;
    return isScalarId(id) ? targetName(named.name, id) : null;
  } catch {
    return null; // the arguments did not coerce; the error response says why
  }
}

/**
 * The operation's top-level fields, looking through inline fragments and fragment spreads (a
 * mutation wrapped in `... on Mutation { }` runs all the same), one per response key.
 */
function topLevelFields(selectionSet: SelectionSetNode, document: DocumentNode, seen = new Set<string>()): FieldNode[] {
  return selectionSet.selections.flatMap((selection): FieldNode[] => {
    if (selection.kind === Kind.FIELD) {
      const key = selection.alias?.value ?? selection.name.value;
      if (seen.has(key)) return [];
      seen.add(key);
      return [selection];
    }
    if (selection.kind === Kind.INLINE_FRAGMENT) return topLevelFields(selection.selectionSet, document, seen);
    // Each fragment once: an invalid document (recorded too) may spread fragments in a cycle.
    const spread = `...${selection.name.value}`;
    if (seen.has(spread)) return [];
    seen.add(spread);
    const fragment = document.definitions.find((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value);
    return fragment ? topLevelFields(fragment.selectionSet, document, seen) : [];
  });
}

/** One record per top-level field of a mutation operation; none for queries and subscriptions. */
export function mutationRecords(input: OperationOutcomeInput): MutationRecord[] {
  const operation = getOperationAST(input.document, input.operationName ?? undefined);
  const mutationType = input.schema.getMutationType();
  if (!operation || operation.operation !== OperationTypeNode.MUTATION || !mutationType) return [];
  const defs = mutationType.getFields();
  const errors = input.result.errors ?? [];
  const requestError = errors.find((e) => !e.path?.length);
  const records: MutationRecord[] = [];
  for (const field of topLevelFields(operation.selectionSet, input.document)) {
    const def = defs[field.name.value];
    if (!def) continue;
    const key = field.alias?.value ?? field.name.value;
    const value = input.result.data?.[key];
    const error = errors.find((e) => e.path?.[0] === key) ?? requestError;
    if (!error && value === undefined) continue; // left out by @skip or @include: it did not run
    // An error below a returned value (a nested field) does not undo the mutation.
    const failed = error !== undefined && (value === null || value === undefined);
    const code = error?.extensions?.code;
    records.push({
      actor: input.actor,
      action: field.name.value,
      target: (failed ? null : targetFromResult(def.type, field, value)) ?? targetFromArgs(def, field, input.variables ?? {}),
      outcome: failed ? outcomeOf(code) : "OK",
      requestId: input.requestId,
      details: {
        ...(input.operationName ? { operationName: input.operationName } : {}),
        ...(typeof code === "string" ? { errorCode: code } : {}),
      },
    });
  }
  return records;
}

async function recordAll(record: RecordMutation, records: MutationRecord[], logger: Logger): Promise<void> {
  for (const r of records) {
    try {
      await record(r);
    } catch (err) {
      // The mutation has committed already; failing its response would mislead the caller.
      logger.error("could not record a mutation in the audit log", { action: r.action, requestId: r.requestId, error: toError(err).message });
    }
  }
}

/** Returns the request id in `x-request-id` and records each mutation's outcome before the response leaves. */
export function createAuditPlugin<T extends AuditedContext>(record: RecordMutation, logger: Logger): ApolloServerPlugin<T> {
  return {
    async requestDidStart(start) {
      const requestId = start.contextValue.requestId;
      start.response.http.headers.set(REQUEST_ID_HEADER, requestId);
      return {
        async willSendResponse(rc) {
          if (!rc.document) return; // not even parsed: nothing says it was a mutation
          const body = rc.response.body;
          const result = body.kind === "single" ? body.singleResult : body.initialResult;
          const records = mutationRecords({
            schema: rc.schema,
            document: rc.document,
            operationName: rc.request.operationName,
            variables: rc.request.variables,
            result: result as ResultShape,
            requestId,
            actor: actorOf(rc.contextValue),
          });
          await recordAll(record, records, logger);
        },
      };
    },
  };
}

/** For graphql-ws `onNext`: records a mutation that arrived over the socket, under its operation's request id. */
export function createWsAuditor(record: RecordMutation, logger: Logger): (args: ExecutionArgs, result: ResultShape) => Promise<void> {
  return async (args, result) => {
    const context = args.contextValue as AuditedContext;
    const records = mutationRecords({
      schema: args.schema,
      document: args.document,
      operationName: args.operationName,
      variables: args.variableValues as Record<string, unknown> | null | undefined,
      result,
      requestId: context.requestId,
      actor: actorOf(context),
    });
    await recordAll(record, records, logger);
  };
}

/** A sign-in failure or a refused query or subscription, recorded like a mutation's outcome (never throws). */
export function recordAuthEvent(
  record: RecordMutation,
  logger: Logger,
  event: { actor: string; action: "auth.signIn" | "auth.denied"; outcome: MutationOutcome; requestId: string; details: Record<string, unknown> },
): void {
  record({ ...event, target: null }).catch((err: unknown) =>
    logger.error("could not record an authentication event in the audit log", { action: event.action, requestId: event.requestId, error: toError(err).message }),
  );
}
