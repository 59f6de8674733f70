import { describe, expect, it } from 'vitest';
import { checkCron, checkScheduleName, checkTimeZone } from '../../../producer/schedules.ts';
import { checkDirection } from '../../../producer/sync.ts';
import type { SyncJobData } from '../../../shared/queues/jobs.ts';
import { pollDelayMs } from '../../../worker/processors/sync.ts';
import { summarize } from '../../../worker/processors/sync-track.ts';
describe('summarize', () => {
  const base: SyncJobData = { dir: '/srv/pkgs', direction: 'up' };
  it('adds the planning counts to the outcomes of the jobs', () => {
    const r = summarize(
      {
        ...base,
        counts: {
          considered: 6,
          unchanged: 2,
          failures: [{ fileName: 'bad.pkg', reason: '[FILE_EMPTY] empty' }],
          hashesComputed: 1,
          hashCacheHits: 5,
          bytesHashed: 10,
        },
        tracked: [
          {
            jobId: '1',
            fileName: 'a.pkg',
            queue: 'upload',
            state: 'completed',
            outcome: 'created',
          },
          {
            jobId: '2',
            fileName: 'b.pkg',
            queue: 'upload',
            state: 'completed',
            outcome: 'replaced',
          },
          {
            jobId: '3',
            fileName: 'c.pkg',
            queue: 'upload',
            state: 'completed',
            outcome: 'unchanged',
          },
          {
            jobId: '4',
            fileName: 'd.pkg',
            queue: 'upload',
            state: 'failed',
            reason: '[PART_FAILED] part 3',
          },
        ],
      },
      1234,
    );
    expect(r).toMatchObject({
      direction: 'up',
      uploaded: 2,
      downloaded: 0,
      unchanged: 3,
      failed: 2,
      jobs: ['1', '2', '3', '4'],
      considered: 6,
      hashesComputed: 1,
      hashCacheHits: 5,
      durationMs: 1234,
    });
    expect(r.failures).toEqual([
      { fileName: 'bad.pkg', reason: '[FILE_EMPTY] empty' },
      { fileName: 'd.pkg', reason: '[PART_FAILED] part 3' },
    ]);
  });
  it('counts downloads for sync down', () => {
    const r = summarize(
      {
        ...base,
        direction: 'down',
        tracked: [
          {
            jobId: '9',
            fileName: 'x.pkg',
            queue: 'download',
            state: 'completed',
            outcome: 'downloaded',
          },
        ],
      },
      1,
    );
    expect(r).toMatchObject({ downloaded: 1, uploaded: 0, failed: 0 });
  });
});

describe('pollDelayMs', () => {
  it('looks often at first, then less often', () => {
    expect(pollDelayMs(0)).toBe(1_000);
    expect(pollDelayMs(10 * 60_000)).toBe(3_000);
    expect(pollDelayMs(3 * 3600_000)).toBe(10_000);
  });
});

describe('schedule input', () => {
  it('accepts 5- and 6-field cron expressions and refuses others with the fix', () => {
    expect(checkCron(' 0  2 * * * ')).toBe('0 2 * * *');
    expect(checkCron('*/1 * * * * *')).toBe('*/1 * * * * *');
    expect(() => checkCron('every night')).toThrow(/not valid: use 5 fields/);
  });
  it('checks names, time zones and directions', () => {
    expect(checkScheduleName('nightly-up')).toBe('nightly-up');
    expect(() => checkScheduleName('../../x')).toThrow(/not valid/);
    expect(checkTimeZone('Europe/Paris')).toBe('Europe/Paris');
    expect(() => checkTimeZone('Mars/Olympus')).toThrow(/IANA/);
    expect(() => checkDirection('sideways')).toThrow(/"up".*"down"/);
  });
});
