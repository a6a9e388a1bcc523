/** The loop of `fem logs --follow` (a run's or a task's): one subscription, followed until what it follows has ended. */
import type { Api } from "./api.js";
import type { CommandContext } from "./context.js";
import type { CliError } from "./errors.js";

export interface FollowUntil<D, R> {
  query: string;
  variables: Record<string, unknown>;
  /** Each result of the subscription. */
  onData(data: D): void;
  /**
   * Asked over HTTP whenever nothing came for `quietMs` (a subscription never completes by itself):
   * the answer to resolve with once what is followed has ended and every line was shown, else null.
   */
  ended(): Promise<R | null>;
  /** @default 1_000 */
  quietMs?: number;
  /** Asks `ended` at the next tick even if data keeps coming (e.g. lines of a run not known yet). */
  askNow?(): boolean;
}

/** Resolves with `ended`'s answer; null on Ctrl-C; rejects with the subscription's or the query's error. */
export async function followUntil<D, R>(ctx: CommandContext, api: Api, follow: FollowUntil<D, R>): Promise<R | null> {
  const quietMs = follow.quietMs ?? 1_000;
  const live = api.live();
  let timer: NodeJS.Timeout | undefined;
  let stopInterrupt = () => undefined as void;
  try {
    return await new Promise<R | null>((resolve, reject) => {
      let lastDataAt = Date.now();
      let checking = false;
      const settle = (fn: () => void) => {
        clearInterval(timer);
        stopInterrupt();
        fn();
      };
      stopInterrupt = ctx.onInterrupt(() => settle(() => resolve(null)));
      live.subscribe<D>(follow.query, follow.variables, (data) => {
        lastDataAt = Date.now();
        follow.onData(data);
      }, (err: CliError) => settle(() => reject(err)));
      timer = setInterval(async () => {
        if (checking || (Date.now() - lastDataAt < quietMs && !follow.askNow?.())) return;
        checking = true;
        try {
          const answer = await follow.ended();
          if (answer !== null) settle(() => resolve(answer));
        } catch (err) {
          settle(() => reject(err));
        } finally {
          checking = false;
          lastDataAt = Date.now();
        }
      }, 200);
    });
  } finally {
    clearInterval(timer);
    await live.dispose();
  }
}
