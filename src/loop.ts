/**
 * A background loop that runs one pass at a time: again at once when a pass says more work is
 * waiting or someone woke it, otherwise after `intervalMs`; with exponential backoff on failure.
 */
import { toError } from "./shared/index.js";
import type { Logger } from "./logger.js";

export interface Loop {
  /** Runs a pass soon (coalesces with one already due). */
  wake(): void;
  /** Resolves when the current pass has finished and no more will start. Safe to call twice. */
  stop(): Promise<void>;
}

export interface LoopOptions {
  name: string;
  intervalMs: number;
  /** One pass; resolves true when more work is known to be waiting. */
  pass: () => Promise<boolean>;
  logger: Logger;
  /** Longest wait after failures. @default 5_000 */
  maxBackoffMs?: number;
}

export function createLoop(options: LoopOptions): Loop {
  const maxBackoffMs = options.maxBackoffMs ?? 5_000;
  let stopped = false;
  let timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  let running: Promise<void> | null = null;
  let wakeRequested = false;
  let failures = 0;

  function cancel(): void {
    if (timer) {
      clearTimeout(timer as NodeJS.Timeout);
      clearImmediate(timer as NodeJS.Immediate);
    }
    timer = null;
  }

  function schedule(delayMs: number): void {
    if (stopped || running) return;
    cancel();
    // Woken or more work waiting: the next turn of the event loop, not a timer's minimum of 1 ms.
    timer = delayMs <= 0 ? setImmediate(tick) : setTimeout(tick, delayMs);
  }

  function tick(): void {
    timer = null;
    wakeRequested = false;
    running = options
      .pass()
      .then((more) => {
        failures = 0;
        return more || wakeRequested ? 0 : options.intervalMs;
      })
      .catch((err: unknown) => {
        failures += 1;
        const backoffMs = Math.min(maxBackoffMs, options.intervalMs * 2 ** Math.min(failures, 8));
        if (failures === 1 || failures % 20 === 0) options.logger.warn(`${options.name} failed; retrying`, { error: toError(err).message, backoffMs, failures });
        return backoffMs;
      })
      .then((delayMs) => {
        running = null;
        schedule(delayMs);
      });
  }

  schedule(0);
  return {
    wake() {
      wakeRequested = true;
      if (timer) schedule(0);
    },
    async stop() {
      stopped = true;
      cancel();
      await running;
    },
  };
}
