/**
 * The failure policy (worker/failure-policy.ts): what `defineProcessor` does with the
 * outcome of a job's work (metrics, clean-up, the error BullMQ sees), driven with a fake
 * job, a fake queue and a recording metrics sink; and `isFinalFailure` as a table.
 */
import {
  DelayedError,
  RateLimitError,
  UnrecoverableError,
  WaitingChildrenError,
  type Job,
  type JobsOptions,
  type Queue,
} from 'bullmq';
import { describe, expect, it, vi } from 'vitest';
import { AppError } from '../../../shared/errors.ts';
import { jamfErrorFromResponse } from '../../../shared/jamf/errors.ts';
import { createLogger } from '../../../shared/logger.ts';
import {
  defineProcessor,
  isFinalFailure,
  type ProcessorSpec,
  type Run,
} from '../../../worker/failure-policy.ts';
import type { JobLock, LockFences } from '../../../worker/fence.ts';
import type { FleetMetrics } from '../../../worker/metrics.ts';

interface Data {
  fileName: string;
}

/** The fields of a BullMQ job the policy reads. */
type JobFields = Pick<Job<Data, string>, 'id' | 'name' | 'data' | 'attemptsMade'> & {
  opts: Pick<JobsOptions, 'attempts'>;
};

/** bullmq's Job is a class with hundreds of members; the policy reads only these. */
function fakeJob(attemptsMade: number, attempts: number | undefined): Job<Data, string> {
  const fields: JobFields = {
    id: '42',
    name: 'upload',
    data: { fileName: 'Firefox.pkg' },
    attemptsMade,
    opts: attempts === undefined ? {} : { attempts },
  };
  return fields as Job<Data, string>;
}

/** Locks that hold, or (`lost`) that another worker has taken: the fence's answers. */
function fakeFences(lost = false): LockFences {
  const lock: JobLock = {
    held: async () => !lost,
    check: async () => undefined,
    saveData: async () => undefined,
    set: async () => undefined,
    del: async () => undefined,
  };
  return { of: () => lock };
}

/** A queue whose only used member is rateLimit (the policy throttles the whole queue). */
function fakeQueue() {
  const rateLimit = vi.fn(async (_ms: number): Promise<void> => undefined);
  const queue: Pick<Queue, 'rateLimit'> = { rateLimit };
  return { queue: queue as Queue, rateLimit };
}

class RecordingMetrics implements FleetMetrics {
  readonly events: string[] = [];
  bytesUploaded(n: number): void {
    this.events.push(`bytesUploaded ${n}`);
  }
  bytesDownloaded(n: number): void {
    this.events.push(`bytesDownloaded ${n}`);
  }
  uploadDuration(seconds: number, transport: string, outcome: string): void {
    this.events.push(`uploadDuration ${seconds} ${transport} ${outcome}`);
  }
  retry(queue: string): void {
    this.events.push(`retry ${queue}`);
  }
  failure(queue: string, code: string): void {
    this.events.push(`failure ${queue} ${code}`);
  }
  credentialRenewal(): void {
    this.events.push('credentialRenewal');
  }
  uploadResent(): void {
    this.events.push('uploadResent');
  }
}

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

interface Harness {
  metrics: RecordingMetrics;
  rateLimit: ReturnType<typeof fakeQueue>['rateLimit'];
  cleanup: ReturnType<
    typeof vi.fn<(job: Job<Data, string>, reason: string, run: Run) => Promise<void>>
  >;
  lines: LogLine[];
  raw: string[];
  /** Runs the processor once; resolves to its value or to the error it threw. */
  call(options?: {
    attemptsMade?: number;
    attempts?: number;
    signal?: AbortSignal;
  }): Promise<unknown>;
}

function harness(
  work: () => Promise<string>,
  options: {
    cleanup?: (reason: string) => Promise<void>;
    throttleMs?: number;
    withoutCleanup?: boolean;
    lockLost?: boolean;
  } = {},
): Harness {
  const metrics = new RecordingMetrics();
  const { queue, rateLimit } = fakeQueue();
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: s => void raw.push(s) } });
  const cleanup = vi.fn(async (_job: Job<Data, string>, reason: string, _run: Run) =>
    options.cleanup?.(reason),
  );
  const spec: ProcessorSpec<Data, string> = {
    queue: 'upload',
    rateLimit: queue,
    ...(options.throttleMs === undefined ? {} : { throttleMs: options.throttleMs }),
    logFields: job => ({ fileName: job.data.fileName }),
    failureFields: () => ({ step: 'complete' }),
    run: () => work(),
    ...(options.withoutCleanup ? {} : { cleanup }),
  };
  const processor = defineProcessor(spec, {
    logger,
    metrics,
    fences: fakeFences(options.lockLost),
  });
  const h: Harness = {
    metrics,
    rateLimit,
    cleanup,
    raw,
    get lines() {
      return raw.map(l => JSON.parse(l) as LogLine);
    },
    call: ({ attemptsMade = 0, attempts = 3, signal } = {}) =>
      processor(fakeJob(attemptsMade, attempts), 'token', signal).catch((e: unknown) => e),
  };
  return h;
}

const failing =
  (err: unknown): (() => Promise<string>) =>
  async () => {
    throw err;
  };

describe('defineProcessor', () => {
  it('a run that lost its lock (LOCK_LOST) stops: no clean-up, nothing counted, logged as a lost lock', async () => {
    const lost = new AppError('LOCK_LOST', 'This worker lost the lock of job 42 (upload).');
    const h = harness(failing(lost));
    // The last attempt: any other failure would be final and cleaned up.
    const err = await h.call({ attemptsMade: 2, attempts: 3 });
    expect((err as Error).constructor).toBe(Error);
    expect((err as Error).message).toBe(
      '[LOCK_LOST] This worker lost the lock of job 42 (upload).',
    );
    expect(h.cleanup).not.toHaveBeenCalled();
    expect(h.metrics.events).toEqual([]);
    expect(h.lines).toHaveLength(1);
    expect(h.lines[0]).toMatchObject({ code: 'LOCK_LOST', step: 'complete' });
    expect(h.lines[0]!.msg).toContain("lost the job's lock");
  });

  it('any failure of a run whose token no longer holds the lock is a lost lock, not the job failing', async () => {
    const h = harness(failing(new AppError('PACKAGE_EXISTS', 'exists')), { lockLost: true });
    const err = await h.call({ attemptsMade: 0, attempts: 3 });
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    expect(h.cleanup).not.toHaveBeenCalled();
    expect(h.metrics.events).toEqual([]);
    expect(h.lines[0]).toMatchObject({ code: 'LOCK_LOST' });
  });

  it('returns the value of a successful run and counts nothing', async () => {
    const h = harness(async () => 'stored');
    await expect(h.call()).resolves.toBe('stored');
    expect(h.metrics.events).toEqual([]);
    expect(h.cleanup).not.toHaveBeenCalled();
    expect(h.rateLimit).not.toHaveBeenCalled();
    expect(h.lines).toEqual([]);
  });

  it('gives the work a child logger with the queue, job id, attempt and logFields', async () => {
    const raw: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: s => void raw.push(s) } });
    const processor = defineProcessor<Data, string>(
      {
        queue: 'upload',
        rateLimit: fakeQueue().queue,
        logFields: job => ({ fileName: job.data.fileName }),
        run: async (_job, run) => {
          run.log.info('working');
          return 'ok';
        },
      },
      { logger, metrics: new RecordingMetrics(), fences: fakeFences() },
    );
    await processor(fakeJob(1, 3));
    expect(JSON.parse(raw[0]!)).toMatchObject({
      msg: 'working',
      queue: 'upload',
      jobId: '42',
      fileName: 'Firefox.pkg',
      attempt: 2,
    });
  });

  it('rethrows a retryable failure before the last attempt as "[CODE] message", counted as a retry', async () => {
    const cause = new AppError('UPLOAD_INCOMPLETE', 'S3 does not hold part 3 of Firefox.pkg.');
    const h = harness(failing(cause));
    const err = await h.call({ attemptsMade: 0, attempts: 3 });
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).constructor).toBe(Error);
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe(
      '[UPLOAD_INCOMPLETE] S3 does not hold part 3 of Firefox.pkg.',
    );
    expect((err as Error).cause).toBe(cause);
    expect(h.metrics.events).toEqual(['retry upload']);
    expect(h.cleanup).not.toHaveBeenCalled();
    expect(h.lines).toHaveLength(1);
    expect(h.lines[0]).toMatchObject({
      msg: 'upload job failed',
      code: 'UPLOAD_INCOMPLETE',
      final: false,
      step: 'complete',
      reason: '[UPLOAD_INCOMPLETE] S3 does not hold part 3 of Firefox.pkg.',
    });
  });

  it('makes the same failure on the last attempt final: failure metric and one cleanup', async () => {
    const cause = new AppError('UPLOAD_INCOMPLETE', 'S3 does not hold part 3 of Firefox.pkg.');
    const h = harness(failing(cause));
    const err = await h.call({ attemptsMade: 2, attempts: 3 });
    expect((err as Error).message).toBe(
      '[UPLOAD_INCOMPLETE] S3 does not hold part 3 of Firefox.pkg.',
    );
    expect(h.metrics.events).toEqual(['failure upload UPLOAD_INCOMPLETE']);
    expect(h.cleanup).toHaveBeenCalledTimes(1);
    expect(h.cleanup.mock.calls[0]![1]).toBe('UPLOAD_INCOMPLETE');
    expect(h.lines[0]).toMatchObject({ code: 'UPLOAD_INCOMPLETE', final: true });
  });

  it('fails a permanent AppError on its first attempt with UnrecoverableError', async () => {
    const h = harness(failing(new AppError('FILE_CHANGED', '/tmp/a.pkg changed on disk.')));
    const err = await h.call({ attemptsMade: 0, attempts: 5 });
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe('[FILE_CHANGED] /tmp/a.pkg changed on disk.');
    expect(h.metrics.events).toEqual(['failure upload FILE_CHANGED']);
    expect(h.cleanup).toHaveBeenCalledTimes(1);
    expect(h.cleanup.mock.calls[0]![1]).toBe('FILE_CHANGED');
  });

  it('treats an UnrecoverableError thrown by the work as a final failure under its reason code', async () => {
    // complete.ts throws this when a part child failed for good.
    const h = harness(
      failing(new UnrecoverableError('[PART_FAILED] 42-p2 of Firefox.pkg failed for good: boom')),
    );
    const err = await h.call({ attemptsMade: 0, attempts: 3 });
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe('[PART_FAILED] 42-p2 of Firefox.pkg failed for good: boom');
    expect(h.metrics.events).toEqual(['failure upload PART_FAILED']);
    expect(h.cleanup).toHaveBeenCalledTimes(1);
    expect(h.cleanup.mock.calls[0]![1]).toBe('PART_FAILED');
    expect(h.lines[0]).toMatchObject({
      msg: 'upload job failed',
      code: 'PART_FAILED',
      final: true,
    });
  });

  it('fails a plain error on the last attempt under ERROR', async () => {
    const h = harness(failing(new Error('something broke')));
    const err = await h.call({ attemptsMade: 0, attempts: 1 });
    expect((err as Error).message).toBe('something broke');
    expect(h.metrics.events).toEqual(['failure upload ERROR']);
    expect(h.cleanup.mock.calls[0]![1]).toBe('failed');
  });

  describe('throttling', () => {
    const rateLimited = jamfErrorFromResponse({
      status: 429,
      method: 'POST',
      path: '/api/v1/jcds/files',
      host: 'jamf.example.com',
      body: '',
      retryAfterMs: 30_000,
    });
    const unavailable = jamfErrorFromResponse({
      status: 503,
      method: 'GET',
      path: '/api/v1/packages/7',
      host: 'jamf.example.com',
      body: '<html><title>Service Unavailable</title></html>',
    });
    const unavailableRetryAfter = jamfErrorFromResponse({
      status: 503,
      method: 'GET',
      path: '/api/v1/packages/7',
      host: 'jamf.example.com',
      body: '',
      retryAfterMs: 12_000,
    });
    const slowDown = { name: 'SlowDown', $metadata: { httpStatusCode: 503 } };

    it('is built from Jamf answers as the client builds it', () => {
      expect(rateLimited).toMatchObject({ code: 'JAMF_RATE_LIMITED', retryAfterMs: 30_000 });
      expect(unavailable).toMatchObject({ code: 'JAMF_UNAVAILABLE', status: 503 });
      expect(unavailable.retryAfterMs).toBeUndefined();
      expect(unavailableRetryAfter).toMatchObject({ status: 503, retryAfterMs: 12_000 });
    });

    it.each([
      ['JAMF_RATE_LIMITED with Retry-After', rateLimited, 30_000],
      ['JAMF_UNAVAILABLE 503 with Retry-After', unavailableRetryAfter, 12_000],
      ['JAMF_UNAVAILABLE 503 without Retry-After', unavailable, 7_000],
      ['a raw S3 SlowDown', slowDown, 7_000],
    ])('%s rate-limits the queue without ending an attempt', async (_name, err, ms) => {
      for (const attemptsMade of [0, 2]) {
        const h = harness(failing(err), { throttleMs: 7_000 });
        const thrown = await h.call({ attemptsMade, attempts: 3 });
        expect(thrown).toBeInstanceOf(RateLimitError);
        expect(h.rateLimit).toHaveBeenCalledTimes(1);
        expect(h.rateLimit).toHaveBeenCalledWith(ms);
        expect(h.metrics.events).toEqual([]);
        expect(h.cleanup).not.toHaveBeenCalled();
        expect(h.lines[0]).toMatchObject({ final: false });
      }
    });

    it('caps a long Retry-After at two minutes', async () => {
      const long = jamfErrorFromResponse({
        status: 429,
        method: 'GET',
        path: '/api/v1/packages',
        host: 'jamf.example.com',
        body: '',
        retryAfterMs: 3_600_000,
      });
      const h = harness(failing(long));
      expect(await h.call()).toBeInstanceOf(RateLimitError);
      expect(h.rateLimit).toHaveBeenCalledWith(120_000);
    });

    it('uses 5 s when neither the error nor the spec says', async () => {
      const h = harness(failing(slowDown));
      expect(await h.call()).toBeInstanceOf(RateLimitError);
      expect(h.rateLimit).toHaveBeenCalledWith(5_000);
    });

    it('does not throttle on a 503 that is not JAMF_UNAVAILABLE-503 (a 500 is a failure)', async () => {
      const broken = jamfErrorFromResponse({
        status: 500,
        method: 'GET',
        path: '/api/v1/packages',
        host: 'jamf.example.com',
        body: '',
      });
      const h = harness(failing(broken));
      const err = await h.call({ attemptsMade: 0, attempts: 3 });
      expect(err).toBeInstanceOf(UnrecoverableError);
      expect(h.rateLimit).not.toHaveBeenCalled();
      expect(h.metrics.events).toEqual(['failure upload JAMF_UNAVAILABLE']);
    });
  });

  it('does not end the job when its signal was aborted (lost lock), even on the last attempt', async () => {
    const h = harness(failing(new AppError('FILE_CHANGED', 'changed')));
    const ac = new AbortController();
    ac.abort(new Error('lock lost'));
    await h.call({ attemptsMade: 2, attempts: 3, signal: ac.signal });
    expect(h.cleanup).not.toHaveBeenCalled();
    expect(h.metrics.events.filter(e => e.startsWith('failure'))).toEqual([]);
    expect(h.lines[0]).toMatchObject({ final: false });
  });

  it.each([
    ['WaitingChildrenError', new WaitingChildrenError()],
    ['DelayedError', new DelayedError()],
    ['RateLimitError', new RateLimitError()],
  ])('passes BullMQ control flow (%s) through untouched', async (_name, control) => {
    const h = harness(failing(control));
    const err = await h.call({ attemptsMade: 2, attempts: 3 });
    expect(err).toBe(control);
    expect(h.metrics.events).toEqual([]);
    expect(h.cleanup).not.toHaveBeenCalled();
    expect(h.rateLimit).not.toHaveBeenCalled();
    expect(h.lines).toEqual([]);
  });

  it('keeps the job error when the cleanup throws, and logs the cleanup failure', async () => {
    const h = harness(failing(new AppError('FILE_CHANGED', 'changed on disk')), {
      cleanup: async () => {
        throw new AppError('S3_ERROR', 'S3 refused AbortMultipartUpload: AccessDenied');
      },
    });
    const err = await h.call({ attemptsMade: 0, attempts: 3 });
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe('[FILE_CHANGED] changed on disk');
    expect(h.cleanup).toHaveBeenCalledTimes(1);
    const cleanupLine = h.lines.find(l => l.msg === 'cleanup failed');
    expect(cleanupLine).toMatchObject({
      level: 50,
      reason: '[S3_ERROR] S3 refused AbortMultipartUpload: AccessDenied',
    });
  });

  it('works without a cleanup', async () => {
    const h = harness(failing(new AppError('FILE_CHANGED', 'changed')), { withoutCleanup: true });
    expect(await h.call()).toBeInstanceOf(UnrecoverableError);
    expect(h.metrics.events).toEqual(['failure upload FILE_CHANGED']);
  });

  it.each([
    [
      'an AppError',
      new AppError('S3_ERROR', 'PUT https://b.s3.amazonaws.com/k?X-Amz-Signature=abc123 refused', {
        retryable: true,
      }),
    ],
    ['a plain Error', new Error('GET https://b.s3.amazonaws.com/k?X-Amz-Signature=abc123 failed')],
  ])('never shows a secret of %s in the thrown reason or the log', async (_name, secret) => {
    for (const attemptsMade of [0, 2]) {
      const h = harness(failing(secret));
      const err = await h.call({ attemptsMade, attempts: 3 });
      expect((err as Error).message).toContain('X-Amz-Signature=[REDACTED]');
      expect((err as Error).message).not.toContain('abc123');
      expect(h.raw.length).toBeGreaterThan(0);
      for (const line of h.raw) expect(line).not.toContain('abc123');
    }
  });
});

describe('isFinalFailure', () => {
  const aborted = AbortSignal.abort();
  const live = new AbortController().signal;
  const retryable = new AppError('UPLOAD_INCOMPLETE', 'x');
  const permanent = new AppError('FILE_CHANGED', 'x');
  const throttle = new AppError('JAMF_RATE_LIMITED', 'x');
  const slowDown = { name: 'SlowDown', $metadata: { httpStatusCode: 503 } };

  it.each<[string, boolean, unknown, number, number | undefined, AbortSignal | undefined]>([
    ['retryable, first of 3', false, retryable, 0, 3, undefined],
    ['retryable, second of 3', false, retryable, 1, 3, live],
    ['retryable, last of 3', true, retryable, 2, 3, undefined],
    ['retryable, past the last', true, retryable, 5, 3, undefined],
    ['retryable, attempts unset (one attempt)', true, retryable, 0, undefined, undefined],
    ['permanent, first of 3', true, permanent, 0, 3, undefined],
    [
      'retryable: false at the throw site',
      true,
      new AppError('JAMF_UNREACHABLE', 'x', { retryable: false }),
      0,
      3,
      undefined,
    ],
    [
      'UnrecoverableError, first of 3',
      true,
      new UnrecoverableError('[PART_FAILED] x'),
      0,
      3,
      undefined,
    ],
    ['plain Error, first of 3', false, new Error('x'), 0, 3, undefined],
    ['plain Error, last of 3', true, new Error('x'), 2, 3, undefined],
    ['throttling, last of 3', false, throttle, 2, 3, undefined],
    ['raw SlowDown, last of 3', false, slowDown, 2, 3, undefined],
    ['permanent with an aborted signal', false, permanent, 0, 3, aborted],
    ['retryable, last, aborted signal', false, retryable, 2, 3, aborted],
  ])('%s -> %s', (_name, final, err, attemptsMade, attempts, signal) => {
    expect(isFinalFailure(err, { attemptsMade, attempts }, signal)).toBe(final);
  });
});
