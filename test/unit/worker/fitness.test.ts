/**
 * A failure that is the worker's, not the job's (worker/fitness.ts): `defineProcessor`
 * hands the job back with `moveToWait` (no failure, no clean-up, no metric) and marks the
 * worker lost; a job that still reaches a lost worker is handed back untouched. Driven with
 * a fake job and fitness; the real processes: faults-services.test.ts F15.
 */
import { WaitingError, type Job, type JobsOptions, type Queue } from 'bullmq';
import { describe, expect, it, vi } from 'vitest';
import { AppError } from '../../../shared/errors.ts';
import { createLogger } from '../../../shared/logger.ts';
import { defineProcessor } from '../../../worker/failure-policy.ts';
import type { JobLock, LockFences } from '../../../worker/fence.ts';
import { isWorkerFault, type FitnessHook } from '../../../worker/fitness.ts';
import { NO_METRICS, type FleetMetrics } from '../../../worker/metrics.ts';

interface Data {
  fileName: string;
}

function fakeJob() {
  const moveToWait = vi.fn(async (_token?: string) => 0);
  const fields: Pick<Job<Data, string>, 'id' | 'name' | 'data' | 'attemptsMade' | 'queueName'> & {
    opts: Pick<JobsOptions, 'attempts'>;
    moveToWait: typeof moveToWait;
  } = {
    id: '7',
    name: 'upload',
    data: { fileName: 'Firefox.pkg' },
    attemptsMade: 0,
    queueName: 'upload',
    opts: { attempts: 3 },
    moveToWait,
  };
  return { job: fields as unknown as Job<Data, string>, moveToWait };
}

const holdingFences: LockFences = {
  of: () =>
    ({
      held: async () => true,
      check: async () => undefined,
      saveData: async () => undefined,
      set: async () => undefined,
      del: async () => undefined,
    }) satisfies JobLock,
};

function fakeFitness(): FitnessHook & { lostWith: unknown[] } {
  const f = {
    healthy: true,
    lostWith: [] as unknown[],
    lost(err: unknown) {
      f.healthy = false;
      f.lostWith.push(err);
    },
  };
  return f;
}

function setup(work: () => Promise<string>) {
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: s => void raw.push(s) } });
  const counted: string[] = [];
  const metrics: FleetMetrics = {
    ...NO_METRICS,
    retry: q => void counted.push(`retry ${q}`),
    failure: (q, c) => void counted.push(`failure ${q} ${c}`),
  };
  const fitness = fakeFitness();
  const cleanup = vi.fn(async () => undefined);
  const run = vi.fn(work);
  const processor = defineProcessor<Data, string>(
    { queue: 'upload', rateLimit: {} as Queue, run, cleanup },
    { logger, metrics, fences: holdingFences, fitness },
  );
  return { processor, fitness, cleanup, run, counted, raw };
}

const refused = () =>
  new AppError('JAMF_AUTH_FAILED', 'Jamf Pro refused the API client credentials', {
    retryable: false,
  });

describe('a failure that is the worker’s, not the job’s', () => {
  it('JAMF_AUTH_FAILED and FLEET_SECRET_MISMATCH are worker faults; a job’s own failures are not', () => {
    expect(isWorkerFault(refused())).toBe(true);
    expect(isWorkerFault(new AppError('FLEET_SECRET_MISMATCH', 'x'))).toBe(true);
    expect(isWorkerFault(new AppError('FILE_CHANGED', 'x'))).toBe(false);
    expect(isWorkerFault(new AppError('VAULT_DECRYPT_FAILED', 'x'))).toBe(false);
    expect(isWorkerFault(new Error('boom'))).toBe(false);
  });

  it('hands the job back to wait (WaitingError), marks the worker lost; no failure, retry or clean-up', async () => {
    const h = setup(async () => {
      throw refused();
    });
    const { job, moveToWait } = fakeJob();
    const err = await h.processor(job, 'the-token').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitingError);
    expect(moveToWait).toHaveBeenCalledWith('the-token');
    expect(h.fitness.healthy).toBe(false);
    expect((h.fitness.lostWith[0] as AppError).code).toBe('JAMF_AUTH_FAILED');
    expect(h.cleanup).not.toHaveBeenCalled();
    expect(h.counted).toEqual([]);
    expect(h.raw.join('')).toMatch(/handed back to the queue/);
  });

  it('a job that reaches a lost worker is handed back before any work', async () => {
    const h = setup(async () => 'done');
    h.fitness.lost(refused());
    const { job, moveToWait } = fakeJob();
    const err = await h.processor(job, 'the-token').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitingError);
    expect(h.run).not.toHaveBeenCalled();
    expect(moveToWait).toHaveBeenCalledTimes(1);
  });

  it('when the job’s lock was lost meanwhile (an aborted signal), it is not handed back: another worker owns it', async () => {
    const h = setup(async () => {
      throw refused();
    });
    const { job, moveToWait } = fakeJob();
    const ac = new AbortController();
    ac.abort(new Error('lock lost'));
    const err = await h.processor(job, 'the-token', ac.signal).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(WaitingError);
    expect(moveToWait).not.toHaveBeenCalled();
  });
});
