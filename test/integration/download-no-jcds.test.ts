/**
 * A Jamf Pro server without the JCDS v1 endpoints (the simulator with --no-jcds answers
 * them 404): downloads and sync down fail at once with JCDS_UNAVAILABLE, saying why.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import { startFleet, waitForJob, type Fleet } from '../helpers/fleet.ts';

let fleet: Fleet;
let producer: Producer;
let out: string;

beforeAll(async () => {
  fleet = await startFleet({ simArgs: ['--no-jcds'] });
  await fleet.startWorker();
  producer = await Producer.connect({ redisUrl: fleet.redis.url });
  out = join(fleet.dir, 'out');
  mkdirSync(out);
});

afterAll(async () => {
  await producer?.close();
  await fleet?.close();
});

describe('without the JCDS endpoints', () => {
  it('a download fails with JCDS_UNAVAILABLE, without retries', async () => {
    const jobId = await producer.download({ fileName: 'Anything.pkg', dest: out });
    const job = await waitForJob(fleet.queue('download'), jobId, 60_000);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(
      /^\[JCDS_UNAVAILABLE\] This Jamf Pro server does not offer the JCDS download endpoints \(GET \/api\/v1\/jcds\/files answered 404/,
    );
    expect(job.attemptsMade).toBe(1);
  });

  it('sync down fails with JCDS_UNAVAILABLE', async () => {
    const jobId = await producer.sync({ direction: 'down', dir: out });
    const job = await waitForJob(fleet.queue('sync'), jobId, 60_000);
    expect(job.failedReason).toMatch(/^\[JCDS_UNAVAILABLE\]/);
  });
});
