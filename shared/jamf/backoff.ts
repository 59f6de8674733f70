/**
 * Retry timing for Jamf calls: Retry-After parsing and exponential backoff with jitter.
 * Pure functions (the clock and the random source are parameters) so they are unit-tested.
 */

/** Default first backoff delay. */
export const DEFAULT_RETRY_BASE_MS = 500;
/** Default cap of one backoff delay. */
export const DEFAULT_RETRY_MAX_MS = 30_000;

/**
 * Parses a Retry-After header: delta-seconds (`"2"`, Jamf uses integers; decimals are
 * accepted) or an HTTP date. Returns milliseconds from `now`, never negative; undefined
 * when absent or unparseable.
 */
export function parseRetryAfter(
  value: string | readonly string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) {
    const seconds = Number(text);
    return Number.isFinite(seconds) ? Math.round(seconds * 1000) : undefined;
  }
  // An HTTP date must name a weekday or month; Date.parse alone accepts "1" and the like.
  if (!/[a-z]{3}/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

export interface BackoffOptions {
  /** First delay; doubled on each further attempt. */
  baseMs?: number;
  /** Cap of one delay, before jitter. */
  maxMs?: number;
  /** A number in [0, 1); Math.random by default. */
  random?: () => number;
}

/**
 * The delay before retry number `retry` (1 for the first retry): "equal jitter", i.e. a
 * uniform draw in [d/2, d) where d = min(maxMs, baseMs * 2^(retry-1)). Half the delay is
 * guaranteed (so retries do back off), half is random (so many clients spread out).
 */
export function backoffDelay(retry: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? DEFAULT_RETRY_BASE_MS;
  const max = options.maxMs ?? DEFAULT_RETRY_MAX_MS;
  const random = options.random ?? Math.random;
  const exp = Math.min(max, base * 2 ** Math.max(0, retry - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/**
 * The delay before retrying a call that Jamf answered with a Retry-After: at least what
 * it asked, plus up to 10% (at most 1 s) of jitter so that many clients waiting on the
 * same answer do not all come back in the same millisecond.
 */
export function retryAfterDelay(retryAfterMs: number, random: () => number = Math.random): number {
  return Math.round(retryAfterMs + random() * Math.min(1000, retryAfterMs * 0.1));
}
