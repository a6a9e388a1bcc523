/**
 * Resource amounts (cpus, memory, GPUs, disk): what a tool or task requests of a node, and what a
 * node has. Shared by tools, tasks, nodes and the scheduler; the wire form is `resourceRequestSchema`.
 */
import { Field, Float, InputType, Int, ObjectType } from "type-graphql";
import { RESOURCE_KINDS, RESOURCE_MAXIMA, type ResourceKind, type ResourceRequest } from "../messaging/contracts.js";
import { BadInputError } from "./errors.js";

export { RESOURCE_KINDS, type ResourceKind, type ResourceRequest };

/** Amounts by kind; a missing kind is not requested (or, for a node, not known). */
export type ResourceAmountsData = Partial<Record<ResourceKind, number>>;
/** Amounts as the API takes them (a null amount is not given). */
export type ResourcesInputData = Partial<Record<ResourceKind, number | null>>;

@ObjectType({ description: "Amounts of each resource; null means not requested (of a task) or not known (of a node)." })
export class ResourceAmounts {
  @Field(() => Float, { nullable: true, description: "CPUs (cores); fractions down to 0.001." }) cpus?: number | null;
  @Field(() => Float, { nullable: true, description: "Memory in MiB (sums over a node's runs may exceed 32 bits)." }) memoryMiB?: number | null;
  @Field(() => Int, { nullable: true }) gpus?: number | null;
  @Field(() => Float, { nullable: true, description: "Disk in MiB (a node's reported free disk may exceed 32 bits)." }) diskMiB?: number | null;
}

@InputType({ description: "Resource amounts; leave out what you do not request (or declare)." })
export class ResourcesInput {
  @Field(() => Float, { nullable: true, description: "CPUs: positive, at most 1024, in steps of 0.001 (0.5 is half a core)." }) cpus?: number | null;
  @Field(() => Int, { nullable: true, description: "Memory in MiB: a positive integer, at most 16777216 (16 TiB)." }) memoryMiB?: number | null;
  @Field(() => Int, { nullable: true, description: "GPUs: an integer from 0 to 64 (0 overrides a tool's request)." }) gpus?: number | null;
  @Field(() => Int, { nullable: true, description: "Disk in MiB: a positive integer, at most 1073741824 (1 PiB)." }) diskMiB?: number | null;
}

/** How each kind reads in a message: "3 cpus", "1 gpu", "512 MiB of memory". */
export function describeAmount(kind: ResourceKind, amount: number): string {
  if (kind === "cpus" || kind === "gpus") return `${amount} ${amount === 1 ? kind.slice(0, -1) : kind}`;
  return `${amount} MiB of ${kind === "memoryMiB" ? "memory" : "disk"}`;
}

/** Why `value` is not an acceptable amount of `kind`, or null. Node totals may be 0 only for gpus, like requests. */
function amountProblem(kind: ResourceKind, value: number): string | null {
  const max = RESOURCE_MAXIMA[kind];
  if (!Number.isFinite(value)) return "must be a number";
  if (kind === "cpus") {
    if (value <= 0 || value > max) return `must be more than 0 and at most ${max}`;
    if (Math.abs(value * 1000 - Math.round(value * 1000)) > 1e-6) return "must be a multiple of 0.001 (a millicpu)";
    return null;
  }
  const min = kind === "gpus" ? 0 : 1;
  if (!Number.isInteger(value) || value < min || value > max) return `must be an integer from ${min} to ${max}`;
  return null;
}

/**
 * Validates amounts given through the API (`field` names them in BAD_USER_INPUT): cpus positive in
 * steps of 0.001, memoryMiB and diskMiB positive integers, gpus an integer from 0; each with its
 * maximum (RESOURCE_MAXIMA). Returns only the kinds given.
 */
export function validateResources(field: string, input: ResourcesInputData | null | undefined): ResourceAmountsData {
  const out: ResourceAmountsData = {};
  if (!input) return out;
  for (const kind of RESOURCE_KINDS) {
    const value = input[kind];
    if (value == null) continue;
    const problem = amountProblem(kind, value);
    if (problem) throw BadInputError.field(`${field}.${kind}`, `${problem} (got ${value})`, { [kind]: value });
    out[kind] = kind === "cpus" ? Math.round(value * 1000) / 1000 : value;
  }
  return out;
}

/** A task's request: the tool's defaults with the task's overrides on top, kind by kind; a request of 0 gpus is dropped. */
export function mergeResources(defaults: ResourceAmountsData, overrides: ResourceAmountsData): ResourceRequest {
  const merged: ResourceAmountsData = { ...defaults, ...overrides };
  if (merged.gpus === 0) delete merged.gpus;
  return merged;
}
