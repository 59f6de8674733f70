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
 *   failure reason always starts with the stable code: "[FILE_CHANGED] ..." (formatReason);
 * - a failure that is the worker's, not the job's (worker/fitness.ts: Jamf refused the
 *   worker's credentials, its fleet secret is no longer the fleet's): the job goes back to
 *   the front of its queue with `job.moveToWait` (no attempt used, nothing cleaned up, no
 *   failure counted) and the worker stops taking jobs. Not DelayedError/moveToDelayed:
 *   the job should be taken at once by a healthy worker, not after a delay; not
 *   RateLimitError: that would hold the whole queue back for every worker.
 */
import { RateLimitError, UnrecoverableError, WaitingError, type Job, type Queue } from 'bullmq';
import { AppError, errorCode, formatReason, isThrottle, parseReason } from '../shared/errors.ts';
import { isSlowDown } from '../shared/s3/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { QueueName } from '../shared/queues/names.ts';
import { isLockLost, type JobLock, type LockFences } from './fence.ts';
import { isWorkerFault, type FitnessHook } from './fitness.ts';
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
  /** This run's hold on the job: every write on the job's behalf is fenced by it (fence.ts). */
  lock: JobLock;
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
  fences: LockFences;
  /** This worker process's fitness (absent in tests of one processor: a worker fault fails the job). */
  fitness?: FitnessHook | undefined;
}

/**
 * Whether a failed run had lost the job's lock: its own LOCK_LOST, or any error once the
 * token no longer holds (a stale run fails on the state the new owner changed). Unknown
 * (Redis away) counts as held: the failure is handled as before.
 */
async function lostLock(err: unknown, lock: JobLock): Promise<boolean> {
  if (isLockLost(err)) return true;
  return lock.held().then(
    held => !held,
    () => false,
  );
}

/**
 * Puts a job this worker cannot do back at the front of its queue, for a healthy worker to
 * take next: its lock released, no attempt used, nothing cleaned up. A lost lock means
 * another worker owns it already. Always throws WaitingError (BullMQ: the job was moved).
 */
async function handBack(
  job: Job,
  token: string | undefined,
  log: Logger,
  fields: Record<string, unknown>,
): Promise<never> {
  log.warn(
    fields,
    `${job.queueName} job handed back to the queue: this worker cannot do it (its configuration, not the job's)`,
  );
  await job
    .moveToWait(token)
    .catch((e: unknown) =>
      log.warn({ reason: formatReason(e) }, 'could not hand the job back (lock lost?)'),
    );
  throw new WaitingError();
}

export function defineProcessor<D, R>(spec: ProcessorSpec<D, R>, deps: PolicyDeps) {
  return async (job: Job<D, R>, token?: string, signal?: AbortSignal): Promise<R> => {
    const log = deps.logger.child({
      queue: spec.queue,
      jobId: job.id,
      ...spec.logFields?.(job),
      attempt: job.attemptsMade + 1,
    });
    const lock = deps.fences.of(job as Job<D, R> & { queueQualifiedName: string }, token);
    const run: Run = { token, signal, log, lock };
    // A worker that stopped taking jobs may still receive one: BullMQ's fetch already
    // blocked when it paused moves the next job to active anyway. Not touched: handed back.
    if (deps.fitness && !deps.fitness.healthy) {
      await handBack(job, token, log, { code: 'WORKER_UNHEALTHY' });
    }
    try {
      return await spec.run(job, run);
    } catch (err) {
      if (isControlFlow(err)) throw err;
      // Another worker owns the job now: this run stops without failing it, counting it or
      // cleaning up after it (the clean-up would undo what the new owner does). BullMQ
      // refuses this worker's move of the job (its lock check), so the job is not changed.
      if (await lostLock(err, lock)) {
        log.warn(
          { code: 'LOCK_LOST', reason: formatReason(err), ...spec.failureFields?.(job) },
          `${spec.queue} job: this worker lost the job's lock; stopped, the job is left to the worker that holds it`,
        );
        throw new Error(formatReason(err), err instanceof Error ? { cause: err } : undefined);
      }
      const code = failureCode(err) ?? 'ERROR';
      if (deps.fitness && isWorkerFault(err) && !signal?.aborted) {
        deps.fitness.lost(err);
        await handBack(job, token, log, { reason: formatReason(err), code });
      }
      const final = isFinalFailure(
        err,
        { attemptsMade: job.attemptsMade, attempts: job.opts.attempts },
        signal,
      );
      // The reason is redacted text, and the error with its cause chain (for the stack)
      // goes through the logger's redacting serializer: no presigned URL, token or key
      // reaches the log.
      log.warn(
        { reason: formatReason(err), code, final, err, ...spec.failureFields?.(job) },
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
