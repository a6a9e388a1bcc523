/**
 * The mutation rate limit: every root field of a mutation takes one unit from its caller's bucket,
 * before anything runs, on HTTP and WebSocket alike. Buckets live in this instance's memory, so with
 * several instances a caller may reach the limit once on each.
 */
import { Kind, type GraphQLError, type OperationDefinitionNode } from "graphql";
import { RateLimitedError } from "../kernel/index.js";
import { requestError } from "./limits.js";

export interface RateLimiter {
  /** Takes one unit for `key`; false when `key` has none left. */
  take(key: string): boolean;
  /** Milliseconds until `key` has a unit again; 0 when it has one now. */
  retryAfterMs(key: string): number;
}

/** Past this many keys, a take sweeps the map and forgets the buckets that have refilled (memory follows active callers). */
const SWEEP_AT_KEYS = 10_000;

/**
 * A token bucket per key holding `perMinute` units, refilled evenly over a minute (so a burst of
 * `perMinute` is allowed, then one unit every 60_000 / perMinute ms).
 */
export function createTokenBuckets(perMinute: number, now: () => number = Date.now): RateLimiter {
  const refillPerMs = perMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();

  function level(key: string): { tokens: number; at: number } {
    const t = now();
    const bucket = buckets.get(key) ?? { tokens: perMinute, at: t };
    bucket.tokens = Math.min(perMinute, bucket.tokens + (t - bucket.at) * refillPerMs);
    bucket.at = t;
    return bucket;
  }

  function sweep(): void {
    for (const key of [...buckets.keys()]) if (level(key).tokens >= perMinute) buckets.delete(key);
  }

  return {
    take(key) {
      const bucket = level(key);
      if (bucket.tokens < 1) return false;
      bucket.tokens -= 1;
      buckets.set(key, bucket);
      if (buckets.size > SWEEP_AT_KEYS) sweep();
      return true;
    },
    retryAfterMs(key) {
      const bucket = buckets.get(key);
      if (!bucket) return 0;
      return Math.max(0, Math.ceil((1 - level(key).tokens) / refillPerMs));
    },
  };
}

/** Who a request comes from, as far as the API knows. */
export interface Caller {
  /** The authenticated subject; null while the API has no authentication. */
  subject: string | null;
  /** The peer's IP address (not a forwarded header: no proxy is trusted). */
  remoteAddress: string | null;
}

/** The key a caller's mutations count under: its subject when known, else its remote address. */
export function callerKey(caller: Caller): string {
  return caller.subject ? `subject:${caller.subject}` : `address:${caller.remoteAddress ?? "unknown"}`;
}

/**
 * Takes one unit per root field of a mutation (a fragment at the root counts once); returns the
 * RATE_LIMITED error (HTTP 429 with Retry-After) when the caller ran out, else null. Units taken by
 * a refused operation's earlier fields stay taken.
 */
export function mutationRateError(limiter: RateLimiter, caller: Caller, operation: OperationDefinitionNode | null | undefined): GraphQLError | null {
  if (operation?.operation !== "mutation") return null;
  const key = callerKey(caller);
  const fields = operation.selectionSet.selections.filter((s) => s.kind !== Kind.FIELD || s.name.value !== "__typename").length;
  for (let i = 0; i < fields; i++) {
    if (limiter.take(key)) continue;
    const retryAfterSeconds = Math.max(1, Math.ceil(limiter.retryAfterMs(key) / 1_000));
    const reason = new RateLimitedError(`too many mutations from this caller; retry after ${retryAfterSeconds} s`, retryAfterSeconds);
    return requestError(reason, 429, new Map([["retry-after", String(retryAfterSeconds)]]));
  }
  return null;
}
