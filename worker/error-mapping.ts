/**
 * Maps errors onto BullMQ semantics in one place:
 * - BullMQ's own control-flow errors (WaitingChildrenError, DelayedError, RateLimitError)
 *   pass through;
 * - throttling (Jamf 429/503 after the client's own retries, S3 SlowDown) rate-limits
 *   the queue for the whole fleet and puts the job back without using an attempt;
 * - AppErrors that cannot succeed on retry become UnrecoverableError;
 * - everything else is rethrown for BullMQ's attempts/backoff.
 * The failure reason always starts with the stable error code: "[FILE_CHANGED] ...".
 */
import { RateLimitError, UnrecoverableError, type Queue } from 'bullmq';
import { AppError, describeError, errorCode } from '../shared/errors.ts';
import { isSlowDown } from '../shared/s3/errors.ts';

const CONTROL_FLOW = new Set([
  'WaitingChildrenError',
  'DelayedError',
  'RateLimitError',
  'WaitingError',
  'UnrecoverableError',
]);

export function isControlFlow(err: unknown): boolean {
  return (
    err instanceof Error &&
    (CONTROL_FLOW.has(err.name) || err.message === 'bullmq:rateLimitExceeded')
  );
}

export function isThrottle(err: unknown): boolean {
  const code = errorCode(err);
  return (
    code === 'JAMF_RATE_LIMITED' ||
    // Jamf's 503 (overloaded, or a node being restarted) outlasting the client's retries is
    // throttling too: a burst longer than the job's attempts must not fail the job.
    (code === 'JAMF_UNAVAILABLE' && (err as { status?: unknown }).status === 503) ||
    code === 'S3_SLOW_DOWN' ||
    (!(err instanceof AppError) && isSlowDown(err))
  );
}

export function retryAfterMs(err: unknown, fallback: number): number {
  if (typeof err === 'object' && err !== null) {
    const ms =
      (err as { retryAfterMs?: unknown }).retryAfterMs ??
      (err as AppError).details?.['retryAfterMs'];
    if (typeof ms === 'number' && ms > 0) return Math.min(ms, 120_000);
  }
  return fallback;
}

export function reasonOf(err: unknown): string {
  const code = errorCode(err);
  const msg = describeError(err);
  return code && err instanceof AppError ? `[${code}] ${msg}` : msg;
}

/** True when the error cannot succeed on a retry. */
export function isPermanent(err: unknown): boolean {
  if (
    err instanceof UnrecoverableError ||
    (err instanceof Error && err.name === 'UnrecoverableError')
  )
    return true;
  if (err instanceof AppError) return !err.retryable;
  return false;
}

/**
 * Converts an error from a processor into what BullMQ should see. Throttling rate-limits
 * `queue` (all workers of it) for the server's Retry-After, or `throttleMs`.
 */
export async function toBullError(err: unknown, queue: Queue, throttleMs = 5_000): Promise<Error> {
  if (isControlFlow(err)) return err as Error;
  if (isThrottle(err)) {
    await queue.rateLimit(retryAfterMs(err, throttleMs));
    return new RateLimitError();
  }
  if (isPermanent(err)) return new UnrecoverableError(reasonOf(err));
  if (err instanceof Error) {
    const e = new Error(reasonOf(err), { cause: err });
    return e;
  }
  return new Error(reasonOf(err));
}
