/**
 * Sync schedules (BullMQ job schedulers) end to end: a 6-field cron firing every second
 * creates sync runs; they keep coming after the worker is SIGKILLed and another starts
 * (the schedule lives in Redis); a run that overlaps the previous one of the same folder
 * is skipped and says so; removing the schedule stops the runs. A schedule added with the
 * sync's options (`--if-exists`, `--category`, `--follow-symlinks`) gives them to every run.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import { JamfClient } from '../../shared/jamf/client.ts';
import type { SyncJobData, SyncResult } from '../../shared/queues/jobs.ts';
import { KiB, MiB } from '../../shared/units.ts';
import { makeFile, ROOT, startFleet, type Fleet } from '../helpers/fleet.ts';

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
  it('jcds schedule add passes the sync options to every run: a link out of the folder is followed, new packages get the category', async () => {
    const linked = join(fleet.dir, 'linked');
    const outside = join(fleet.dir, 'outside');
    mkdirSync(linked);
    mkdirSync(outside);
    const target = await makeFile(outside, 'Outside Tool.pkg', 150 * KiB);
    symlinkSync(target.path, join(linked, 'Outside Tool.pkg'));
    await makeFile(linked, 'Inside Tool.pkg', 120 * KiB);
    const env = {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '/tmp',
      REDIS_URL: fleet.redis.url,
    };
    const cli = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise(resolve =>
        execFile(
          process.execPath,
          [join(ROOT, 'bin/jcds.js'), ...args],
          { env, cwd: fleet.dir },
          (err, stdout, stderr) =>
            resolve({
              code: err ? Number((err as { code?: number }).code ?? 1) : 0,
              stdout,
              stderr,
            }),
        ),
      );
    // An option that does not apply to the direction is refused, and nothing is added.
    const refused = await cli([
      'schedule',
      'add',
      'wrong',
      '--cron',
      '0 2 * * *',
      '--follow-symlinks',
      'sync',
      'down',
      linked,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--follow-symlinks applies to sync up only/);
    const added = await cli([
      'schedule',
      'add',
      'linked-up',
      '--cron',
      '*/1 * * * * *',
      '--tz',
      'UTC',
      '--category',
      'Utilities',
      '--if-exists',
      'replace',
      '--follow-symlinks',
      '--json',
      'sync',
      'up',
      linked,
    ]);
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout.trim().split('\n')[0]!)).toMatchObject({
      event: 'schedule',
      name: 'linked-up',
      ifExists: 'replace',
      category: 'Utilities',
      followSymlinks: true,
    });
    const listed = await cli(['schedule', 'ls']);
    expect(listed.stdout).toMatch(
      /linked-up .* up .* --if-exists replace --category "Utilities" --follow-symlinks$/m,
    );
    expect((await producer.listSchedules()).map(s => s.name)).not.toContain('wrong');

    // A run publishes the file the link points to (without the option it would be
    // SYMLINK_OUTSIDE), and both new packages carry the category.
    const run = await waitFor(
      'a run of linked-up that published both files',
      async () => {
        const jobs = (await fleet.queue('sync').getJobs(['completed'], 0, -1)) as Array<
          Job<SyncJobData, SyncResult>
        >;
        return jobs.find(j => j.data.schedule === 'linked-up' && j.returnvalue.uploaded === 2);
      },
      60_000,
    );
    expect(run.data.options).toEqual({
      ifExists: 'replace',
      category: 'Utilities',
      followSymlinks: true,
    });
    expect(run.returnvalue.failed).toBe(0);
    await producer.removeSchedule('linked-up');
    const jamf = new JamfClient({
      baseUrl: fleet.sim.info.jamfUrl,
      auth: { kind: 'oauth', id: fleet.sim.info.clientId, secret: fleet.sim.info.clientSecret },
    });
    const utilities = (await jamf.findCategoryId('Utilities'))!;
    for (const name of ['Outside Tool.pkg', 'Inside Tool.pkg']) {
      const pkg = await jamf.findPackageByFileName(name);
      expect(pkg, name).toBeDefined();
      expect(String(pkg!.categoryId)).toBe(String(utilities));
    }
    await jamf.close();
  });
});
