/**
 * Fault tolerance, proven: Redis going away. The redis-server is a real process with
 * appendonly yes (appendfsync everysec); it is SIGKILLed and started again on the same
 * port with the same data dir.
 *
 *   F3  Redis killed mid-batch and down for 15 s: workers reconnect by themselves and
 *       resume; no accepted job is lost (bullmq 6.0–6.2 workers never resumed, #4585).
 *   F4  Redis down when a producer enqueues: a clear REDIS_UNAVAILABLE naming the URL, and
 *       nothing reported as enqueued that was not.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import { AppError } from '../../shared/errors.ts';
import { redisOptions } from '../../shared/queues/connection.ts';
import type { UploadJobData } from '../../shared/queues/jobs.ts';
import { MiB } from '../../shared/units.ts';
import { makeFile } from '../helpers/fleet.ts';
import { freePort } from '../helpers/redis.ts';
import {
  BULLMQ_RUN_RETRY_DELAY_MS,
  expectNoSecretsInLogs,
  expectNothingHalfDone,
  expectPublished,
  FAULT_ENV,
  fmtMs,
  SLACK_MS,
  useHarness,
  waitForJobSettled,
  waitUntil,
} from '../helpers/faults.ts';

const h = useHarness();

/** The delays of a connection's retry strategy (shared/queues/connection.ts), in order. */
function retryDelays(url: string, role: 'worker' | 'producer', upTo = 1_000): number[] {
  const strategy = redisOptions(url, role).retryStrategy;
  const delays: number[] = [];
  for (let times = 1; strategy && times <= upTo; times++) {
    const d = strategy(times);
    if (typeof d !== 'number') break;
    delays.push(d);
  }
  return delays;
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure, but the call succeeded');
}

describe('Redis faults', () => {
  it('F4: a producer facing a Redis that is down gets REDIS_UNAVAILABLE naming the URL; nothing is enqueued', async () => {
    const { fleet } = h;
    const file = await makeFile(fleet.dir, 'F4 Not Enqueued.pkg', 1 * MiB);

    // Nothing listens there at all.
    const nowhere = `redis://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const err = await failure(Producer.connect({ redisUrl: nowhere }));
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('REDIS_UNAVAILABLE');
    expect((err as AppError).message).toContain(nowhere.replace(/\/?$/, ''));
    expect((err as AppError).message).toMatch(/nothing was enqueued/);
    // Fails fast: nothing listens on a loopback port, so each connection attempt is refused at
    // once (connectTimeout never applies) and the producer's retry strategy gives up after its
    // delays (2 × 200 ms); + slack.
    const failedMs = Date.now() - started;
    const retries = retryDelays(nowhere, 'producer');
    expect(retries.length).toBeLessThan(1_000); // it does give up
    const failBound = retries.reduce((a, b) => a + b, 0) + SLACK_MS;
    console.log(`F4: connect to nothing failed in ${fmtMs(failedMs)} (bound ${fmtMs(failBound)})`);
    expect(failedMs).toBeLessThan(failBound);

    // A connected producer whose Redis dies before it enqueues.
    const producer = await Producer.connect({ redisUrl: fleet.redis.url });
    const errors: unknown[] = [];
    try {
      await fleet.redis.kill('SIGKILL');
      errors.push(await failure(producer.upload({ path: file.path })));
      errors.push(await failure(producer.uploadMany([{ path: file.path }])));
    } finally {
      await fleet.redis.start();
      await producer.close();
    }
    // Nothing of that attempt reached Redis.
    const jobs = await fleet.queue('upload').getJobs(['wait', 'active', 'delayed', 'prioritized']);
    expect(jobs.filter(j => (j.data as UploadJobData).fileName === 'F4 Not Enqueued.pkg')).toEqual(
      [],
    );
    // And the error says what is wrong and where.
    for (const e of errors) {
      console.log(`F4: enqueue with Redis down: ${(e as Error).message}`);
      expect((e as AppError).code, String(e)).toBe('REDIS_UNAVAILABLE');
      expect((e as Error).message).toContain(`127.0.0.1:${fleet.redis.port}`);
      expect((e as Error).message).toMatch(/nothing was enqueued/);
    }
  });

  it('F3: Redis SIGKILLed mid-batch and down 15 s: workers reconnect and resume; every accepted job is published once', async () => {
    const { fleet } = h;
    const a = await fleet.startWorker();
    const b = await fleet.startWorker();
    const s3BytesPerSecond = 4 * MiB;
    await fleet.sim.control.setFaults({ s3BytesPerSecond });
    const specs = [
      ...Array.from({ length: 10 }, (_, i) => ({
        name: `F3 Small ${i}.pkg`,
        size: 1 * MiB + i * 4099,
      })),
      { name: 'F3 Large A.pkg', size: 25 * MiB },
      { name: 'F3 Large B.pkg', size: 25 * MiB + 17 },
    ];
    const files = await Promise.all(specs.map(s => makeFile(fleet.dir, s.name, s.size)));
    const enq = await h.producer.uploadMany(files.map(f => ({ path: f.path })));
    expect(enq.every(e => e.created)).toBe(true);
    const q = fleet.queue('upload');
    q.on('error', () => undefined); // connection errors while Redis is down are expected

    // Kill Redis once the batch is well under way: some done, parts in flight.
    const large = enq.slice(-2).map(e => e.jobId);
    await waitUntil(
      async () => {
        if ((await q.getCompletedCount()) < 3) return false;
        const steps = await Promise.all(large.map(async id => (await q.getJob(id))?.data.step));
        return steps.includes('complete'); // a multipart upload is open, its parts in flight
      },
      '3 uploads done and a multipart upload open',
      60_000,
    );
    const doneBefore = await q.getCompletedCount();
    await fleet.redis.kill('SIGKILL');
    const killedAt = Date.now();
    await sleep(15_000); // the outage itself (the fault under test), not a wait for an event
    const startingAt = Date.now(); // nothing can complete while Redis is down
    await fleet.redis.start();
    const restartedAt = Date.now();

    // The same worker processes carry on: no restart, no help. The first job completed after
    // the restart, by its finishedOn (BullMQ's record, this machine's clock): a count compared
    // with one read before the kill could be met by a job completed between that read and the
    // kill.
    const firstAfter = await waitUntil(
      async () => {
        try {
          const after = (await q.getJobs(['completed']))
            .map(j => j.finishedOn ?? 0)
            .filter(at => at >= startingAt);
          return after.length > 0 ? Math.min(...after) : undefined;
        } catch {
          return undefined;
        }
      },
      'a job to complete after the restart',
      60_000,
      100,
    );
    const jobs = [];
    for (const e of enq) jobs.push(await waitForJobSettled(q, e.jobId, 120_000));
    const allDone = Date.now();
    expect(a.proc.exitCode).toBeNull();
    expect(b.proc.exitCode).toBeNull();

    await fleet.sim.control.clearFaults();
    for (const [i, job] of jobs.entries()) await expectPublished(h, job, files[i]!, specs[i]!.size);
    await expectNothingHalfDone(h);
    expectNoSecretsInLogs(fleet);
    const strays = fleet.workers
      .map(w => w.logs().split('stray multipart upload of an earlier attempt aborted').length - 1)
      .reduce((x, y) => x + y, 0);
    // Resumed in time: a worker reconnects within its retry strategy's cap (2 s); a fetch that
    // failed on the lost connection waits BullMQ's runRetryDelay (15 s; the stalled checker's
    // way back, 5 s and 2 stalledIntervals, is shorter); then one upload's transfer at the
    // throttle (the largest: 2 rounds of JCDS_PART_CONCURRENCY parts, 2.5 s); + slack.
    const reconnectCapMs = Math.max(...retryDelays(fleet.redis.url, 'worker'));
    const partSize = 5 * MiB; // FAULT_ENV's JCDS_PART_SIZE
    const largest = Math.max(...specs.map(s => s.size));
    const rounds = Math.ceil(
      Math.ceil(largest / partSize) / Number(FAULT_ENV['JCDS_PART_CONCURRENCY']),
    );
    const transferMs = (rounds * partSize * 1_000) / s3BytesPerSecond;
    const resumeBound = reconnectCapMs + BULLMQ_RUN_RETRY_DELAY_MS + transferMs + SLACK_MS;
    console.log(
      `F3: ${strays} stray multipart upload(s) cleaned up; ${doneBefore} of ${enq.length} done at the kill; Redis down ${fmtMs(restartedAt - killedAt)}; first job completed ${fmtMs(firstAfter - restartedAt)} after the restart (bound ${fmtMs(resumeBound)}); batch done ${fmtMs(allDone - restartedAt)} after it`,
    );
    expect(firstAfter - restartedAt).toBeLessThan(resumeBound);
  });
});
