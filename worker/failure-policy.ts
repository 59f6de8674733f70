/**
 * One failure policy for every queue. `defineProcessor` wraps a processor's work and owns,
 * in one place:
 * - the child logger (queue, job id, attempt, and the fields the queue adds);
 * - the last-attempt decision: a failure is final when it cannot succeed on a retry (an
 *   UnrecoverableError, or an AppError its registry entry or its throw site calls
 *   permanent) or when this was the job's last attempt; never when it is throttling (the
 *   job goes back without using an attempt) or when the job's signal was aborted (the lock
 *   was lost or the worker shuts down: another worker owns the job now, and must find
 *   everything as it was);
 * - metrics: a final failure counts under its code, any other failure as a retry;
 * - clean-up: run once, on a final failure only;
 * - the mapping onto BullMQ: BullMQ's own control-flow errors pass through; throttling
 *   rate-limits the queue for the whole fleet and throws RateLimitError; a permanent error
 *   becomes UnrecoverableError; everything else is rethrown for attempts and backoff. The
 *   failure reason always starts with the stable code: "[FILE_CHANGED] ..." (formatReason).
 */
import { RateLimitError, UnrecoverableError, type Job, type Queue } from 'bullmq';
import { AppError, errorCode, formatReason, isThrottle, parseReason } from '../shared/errors.ts';
import { isSlowDown } from '../shared/s3/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { QueueName } from '../shared/queues/names.ts';
import type { FleetMetrics } from './metrics.ts';

// Not UnrecoverableError: that one is a failure of the work (complete.ts throws it for a
// part that failed for good), so it goes through the policy: final, counted, cleaned up.
const CONTROL_FLOW = new Set([
  'WaitingChildrenError',
  'DelayedError',
  'RateLimitError',
  'WaitingError',
]);

/** BullMQ's own errors that move a job (they are not failures of the work). */
export function isControlFlow(err: unknown): boolean {
  return (
    err instanceof Error &&
    (CONTROL_FLOW.has(err.name) || err.message === 'bullmq:rateLimitExceeded')
  );
}

/** Throttling by the registry (Jamf 429, 503; S3 SlowDown), or a raw S3 SlowDown. */
export function isThrottled(err: unknown): boolean {
  return isThrottle(err, isSlowDown);
}

/** The server's Retry-After, if the error carries one (capped at 2 minutes), else `fallback`. */
export function retryAfterMs(err: unknown, fallback: number): number {
  if (typeof err === 'object' && err !== null) {
    const ms =
      (err as { retryAfterMs?: unknown }).retryAfterMs ??
      (err as AppError).details?.['retryAfterMs'];
    if (typeof ms === 'number' && ms > 0) return Math.min(ms, 120_000);
  }
  return fallback;
}

/**
 * The stable code of a failure: the error's own, else the `[CODE]` its message starts with
 * (an UnrecoverableError built from a formatted reason).
 */
export function failureCode(err: unknown): string | undefined {
  return errorCode(err) ?? (err instanceof Error ? parseReason(err.message).code : undefined);
}

/** True when the error cannot succeed on a retry. */
export function isPermanent(err: unknown): boolean {
  if (err instanceof Error && err.name === 'UnrecoverableError') return true;
  if (err instanceof AppError) return !err.retryable;
  return false;
}

/** Whether a failure ends the job for good (see the file comment). */
export function isFinalFailure(
  err: unknown,
  attempt: { attemptsMade: number; attempts: number | undefined },
  signal?: AbortSignal,
): boolean {
  if (isThrottled(err) || signal?.aborted) return false;
  return isPermanent(err) || attempt.attemptsMade + 1 >= (attempt.attempts ?? 1);
}

/**
 * Converts an error from a processor into what BullMQ should see. Throttling rate-limits
 * `queue` (all workers of it) for the server's Retry-After, or `throttleMs`.
 */
export async function toBullError(err: unknown, queue: Queue, throttleMs = 5_000): Promise<Error> {
  if (isControlFlow(err)) return err as Error;
  if (isThrottled(err)) {
    await queue.rateLimit(retryAfterMs(err, throttleMs));
    return new RateLimitError();
  }
  if (isPermanent(err)) return new UnrecoverableError(formatReason(err));
  return new Error(formatReason(err), err instanceof Error ? { cause: err } : undefined);
}

/** What the work of one job gets. */
export interface Run {
  token: string | undefined;
  signal: AbortSignal | undefined;
  log: Logger;
}

export interface ProcessorSpec<D, R> {
  queue: QueueName;
  /** The queue to rate-limit when the work is throttled. */
  rateLimit: Queue;
  /** The fallback rate-limit without a Retry-After, ms (default 5 s). */
  throttleMs?: number;
  /** Fields for the job's child logger beyond queue, job id and attempt. */
  logFields?(job: Job<D, R>): Record<string, unknown>;
  /** Fields for the failure's log line (read when it fails: a step job's step). */
  failureFields?(job: Job<D, R>): Record<string, unknown>;
  run(job: Job<D, R>, run: Run): Promise<R>;
  /** Undoes what a job started, once it has failed for good. Its own failure is logged. */
  cleanup?(job: Job<D, R>, reason: string, run: Run): Promise<void>;
}

export interface PolicyDeps {
  logger: Logger;
  metrics: FleetMetrics;
}

export function defineProcessor<D, R>(spec: ProcessorSpec<D, R>, deps: PolicyDeps) {
  return async (job: Job<D, R>, token?: string, signal?: AbortSignal): Promise<R> => {
    const log = deps.logger.child({
      queue: spec.queue,
      jobId: job.id,
      ...spec.logFields?.(job),
      attempt: job.attemptsMade + 1,
    });
    const run: Run = { token, signal, log };
    try {
      return await spec.run(job, run);
    } catch (err) {
      if (isControlFlow(err)) throw err;
      const code = failureCode(err) ?? 'ERROR';
      const final = isFinalFailure(
        err,
        { attemptsMade: job.attemptsMade, attempts: job.opts.attempts },
        signal,
      );
      // The reason is redacted text: no presigned URL, token or key reaches the log.
      log.warn(
        { reason: formatReason(err), code, final, ...spec.failureFields?.(job) },
        `${spec.queue} job failed`,
      );
      if (final) {
        deps.metrics.failure(spec.queue, code);
        await spec
          .cleanup?.(job, failureCode(err) ?? 'failed', run)
          .catch((e: unknown) => log.error({ reason: formatReason(e) }, 'cleanup failed'));
      } else if (!isThrottled(err)) deps.metrics.retry(spec.queue);
      throw await toBullError(err, spec.rateLimit, spec.throttleMs);
    }
  };
}
