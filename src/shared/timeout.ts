/** Bounding a wait. */

/** The rejection of `withTimeout` when the promise did not settle in time. */
export class TimeoutError extends Error {
  constructor(
    message: string,
    readonly timeoutMs: number,
  ) {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * Settles as `promise` does, or rejects with a `TimeoutError` carrying `message` once `timeoutMs`
 * have passed; the promise itself is not cancelled.
 */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(message, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
