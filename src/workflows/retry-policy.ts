/** A task's retry policy: which failures start a new attempt, how many attempts, and the backoff. */
import { Field, Float, InputType, Int, ObjectType } from "type-graphql";
import { BadInputError, FailureReason } from "../kernel/index.js";

@ObjectType()
export class RetryPolicy {
  @Field(() => Int, { description: "Attempts per node in all, the first included. 1 means no retry." })
  maxAttempts!: number;
  @Field(() => Float, { description: "Wait before the second attempt; doubles for each later one." })
  backoffSeconds!: number;
  @Field(() => [FailureReason], { description: "Failures that start a new attempt. A non-zero exit (EXIT_CODE) only when listed." })
  retryOn!: FailureReason[];
}

@InputType()
export class RetryPolicyInput {
  @Field(() => Int, { nullable: true, description: "Default 1 (no retry); at most 20." }) maxAttempts?: number | null;
  @Field(() => Float, { nullable: true, description: "Default 1." }) backoffSeconds?: number | null;
  @Field(() => [FailureReason], { nullable: true, description: "Default [NODE_LOST]." }) retryOn?: FailureReason[] | null;
}

export const MAX_ATTEMPTS = 20;

export function defaultRetryPolicy(): RetryPolicy {
  return { maxAttempts: 1, backoffSeconds: 1, retryOn: [FailureReason.NODE_LOST] };
}

export function validateRetryPolicy(field: string, input: RetryPolicyInput | null | undefined): RetryPolicy {
  const policy = defaultRetryPolicy();
  if (!input) return policy;
  if (input.maxAttempts != null) {
    if (!Number.isInteger(input.maxAttempts) || input.maxAttempts < 1 || input.maxAttempts > MAX_ATTEMPTS) {
      throw BadInputError.field(`${field}.maxAttempts`, `must be an integer from 1 to ${MAX_ATTEMPTS}`);
    }
    policy.maxAttempts = input.maxAttempts;
  }
  if (input.backoffSeconds != null) {
    if (!Number.isFinite(input.backoffSeconds) || input.backoffSeconds < 0 || input.backoffSeconds > 3_600) {
      throw BadInputError.field(`${field}.backoffSeconds`, "must be from 0 to 3600");
    }
    policy.backoffSeconds = input.backoffSeconds;
  }
  if (input.retryOn != null) {
    if (input.retryOn.includes(FailureReason.REJECTED_BY_NODE)) throw BadInputError.field(`${field}.retryOn`, "a node that rejects a tool rejects it again; REJECTED_BY_NODE cannot be retried");
    policy.retryOn = [...new Set(input.retryOn)];
  }
  return policy;
}
