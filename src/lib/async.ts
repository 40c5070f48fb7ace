// Small timing helpers shared by the infrastructure: a timeout race and a log throttle.

/** Rejects with `message` if `work` has not settled within `ms`; the timer never outlives the race. */
export async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Returns a gate that opens at most once per `everyMs`: a dependency that is down fails on every
 * call, and one log line per interval says so without flooding the log.
 */
export function throttle(everyMs: number, now: () => number = Date.now): () => boolean {
  let last = Number.NEGATIVE_INFINITY;
  return () => {
    const t = now();
    if (t - last < everyMs) return false;
    last = t;
    return true;
  };
}

export interface RetryOptions {
  /** Stop retrying once this much time has passed since the first try. */
  windowMs: number;
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** Called before each wait, with the error that will be retried. */
  onRetry?(err: unknown, attempt: number): void;
}

/**
 * Runs `work`, and again with doubling waits while `retryable(err)` holds and the window lasts;
 * the last error is thrown. For writes that must outlive a dependency's restart.
 */
export async function retryWithin<T>(
  work: () => Promise<T>,
  retryable: (err: unknown) => boolean,
  opts: RetryOptions,
): Promise<T> {
  const until = Date.now() + opts.windowMs;
  let delay = opts.firstDelayMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      const wait = Math.min(delay, until - Date.now());
      if (!retryable(err) || wait <= 0) throw err;
      opts.onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, wait));
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 1000);
    }
  }
}
