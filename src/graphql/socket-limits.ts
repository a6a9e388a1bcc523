/**
 * Limits on WebSockets, each refused with a reason that names it: open sockets per subject on this
 * instance (the extra connection is closed with 4429) and operations in progress per socket (the
 * extra subscribe is answered with RATE_LIMITED).
 */
import { RateLimitedError } from "../kernel/index.js";

/** Close code for a connection over the per-user socket limit (graphql-ws's "too many" code). */
export const CLOSE_TOO_MANY_SOCKETS = 4429;

export interface SocketCounter {
  /**
   * Counts one more socket for `subject`: a release function (safe to call twice), or null when
   * the subject already holds `maxSocketsPerUser` sockets.
   */
  acquire(subject: string): (() => void) | null;
  /** Open sockets counted for `subject`. */
  count(subject: string): number;
}

export function createSocketCounter(maxSocketsPerUser: number): SocketCounter {
  const open = new Map<string, number>();
  return {
    acquire(subject) {
      const current = open.get(subject) ?? 0;
      if (current >= maxSocketsPerUser) return null;
      open.set(subject, current + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (open.get(subject) ?? 1) - 1;
        if (left <= 0) open.delete(subject);
        else open.set(subject, left);
      };
    },
    count: (subject) => open.get(subject) ?? 0,
  };
}

/** The close reason for a connection over the socket limit (a WebSocket close reason fits in 123 bytes). */
export function tooManySocketsReason(maxSocketsPerUser: number): string {
  return `too many sockets: at most ${maxSocketsPerUser} per user on this server`;
}

/**
 * The refusal of a subscribe when `inProgress` operations (this one included) exceed the
 * per-socket limit, or null when it may go on.
 */
export function subscriptionLimitError(inProgress: number, maxSubscriptionsPerSocket: number): RateLimitedError | null {
  if (inProgress <= maxSubscriptionsPerSocket) return null;
  return RateLimitedError.limit(
    `too many subscriptions on this WebSocket: at most ${maxSubscriptionsPerSocket} operations at once (FEM_MAX_SUBSCRIPTIONS_PER_SOCKET); complete one or open another socket`,
    "subscriptionsPerSocket",
    maxSubscriptionsPerSocket,
  );
}
