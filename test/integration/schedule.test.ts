/**
 * Sync schedules (BullMQ job schedulers) end to end: a 6-field cron firing every second
 * creates sync runs; they keep coming after the worker is SIGKILLed and another starts
 * (the schedule lives in Redis); a run that overlaps the previous one of the same folder
 * is skipped and says so; removing the schedule stops the runs.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import type { SyncJobData, SyncResult } from '../../shared/queues/jobs.ts';
import { KiB, MiB } from '../../shared/units.ts';
import { makeFile, startFleet, type Fleet } from '../helpers/fleet.ts';

let fleet: Fleet;
let producer: Producer;
let dir: string;

async function runs(
  state: 'completed' | 'all' = 'completed',
): Promise<Array<Job<SyncJobData, SyncResult>>> {
  const states =
    state === 'all'
      ? (['completed', 'failed', 'active', 'wait', 'delayed', 'prioritized'] as const)
      : (['completed'] as const);
  const jobs = (await fleet.queue('sync').getJobs([...states], 0, -1)) as Array<
    Job<SyncJobData, SyncResult>
  >;
  return jobs.filter(j => j.data.schedule === 'every-second');
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

beforeAll(async () => {
  fleet = await startFleet({ env: { JCDS_TRANSPORT: 's3' } });
  await fleet.startWorker();
  producer = await Producer.connect({ redisUrl: fleet.redis.url });
  dir = join(fleet.dir, 'nightly');
  mkdirSync(dir);
  await makeFile(dir, 'Tool A.pkg', 200 * KiB);
  await makeFile(dir, 'Tool B.dmg', 300 * KiB);
});

afterAll(async () => {
  await producer?.close();
  await fleet?.close();
});

describe('sync schedules', () => {
  it('refuses bad input with the fix', async () => {
    await expect(
      producer.addSchedule({ name: 'bad', cron: '61 * * * *', direction: 'up', dir }),
    ).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/cron expression "61 \* \* \* \*" is not valid/),
    });
    await expect(
      producer.addSchedule({
        name: 'bad',
        cron: '0 2 * * *',
        tz: 'Nowhere/Land',
        direction: 'up',
        dir,
      }),
    ).rejects.toMatchObject({ code: 'USAGE' });
    await expect(
      producer.addSchedule({
        name: 'bad',
        cron: '0 2 * * *',
        direction: 'up',
        dir: join(dir, 'missing'),
      }),
    ).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
    });
    await expect(producer.removeSchedule('never-added')).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/jcds schedule ls/),
    });
    expect(await producer.listSchedules()).toEqual([]);
  });

  it('runs every second, survives a worker restart, skips overlapping runs, and stops when removed', async () => {
    const info = await producer.addSchedule({
      name: 'every-second',
      cron: '*/1 * * * * *',
      tz: 'UTC',
      direction: 'up',
      dir,
    });
    expect(info).toMatchObject({
      name: 'every-second',
      cron: '*/1 * * * * *',
      tz: 'UTC',
      direction: 'up',
      dir,
    });
    expect(info.next).toBeGreaterThan(Date.now() - 1_000);
    expect(await producer.listSchedules()).toEqual([
      expect.objectContaining({ name: 'every-second', direction: 'up', dir }),
    ]);

    // Runs happen: the first publishes both files, later ones find them unchanged.
    const first = await waitFor('3 scheduled runs', async () => {
      const done = await runs();
      return done.length >= 3 ? done : undefined;
    });
    const results = first.map(j => j.returnvalue);
    expect(results.some(r => r.uploaded === 2)).toBe(true);
    expect(results.some(r => r.unchanged === 2 && r.uploaded === 0)).toBe(true);

    // The schedule lives in Redis: a new worker carries on after the old one is killed.
    const before = (await runs()).length;
    await fleet.workers[0]!.kill('SIGKILL');
    await fleet.startWorker();
    await waitFor('runs after the restart', async () =>
      (await runs()).length >= before + 2 ? true : undefined,
    );

    // A run that takes longer than a second: the runs that start meanwhile are skipped.
    await makeFile(dir, 'Big Tool.pkg', 3 * MiB);
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 1 * MiB });
    try {
      const skipped = await waitFor('a skipped run', async () =>
        (await runs()).find(j => j.returnvalue.skipped),
      );
      expect(skipped.returnvalue.skipped).toMatch(
        /^a sync up of .*nightly is already running \(job .+\): this run did nothing$/,
      );
      expect(skipped.returnvalue.jobs).toEqual([]);
    } finally {
      await fleet.sim.control.clearFaults();
    }
    const published = await waitFor('the slow run', async () =>
      (await runs()).find(j => j.returnvalue.uploaded === 1),
    );
    expect(published.returnvalue).toMatchObject({
      unchanged: 2,
      failed: 0,
      schedule: 'every-second',
    });

    // Removing the schedule stops the runs (a run already going may finish).
    await producer.removeSchedule('every-second');
    expect(await producer.listSchedules()).toEqual([]);
    await sleep(1_500);
    const atRemoval = new Set((await runs('all')).map(j => j.id));
    await sleep(3_000);
    const later = (await runs('all')).filter(j => !atRemoval.has(j.id));
    expect(later.map(j => j.id)).toEqual([]);
    console.log(`schedule: ${(await runs()).length} runs completed before removal, none after`);
  });
});
