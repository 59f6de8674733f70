/**
 * The CLI's pure output parts: progress normalisation, the speed meter, failure codes,
 * advice for errors, result descriptions, tables, the --json and plain-line views, and
 * the `ls` join of JCDS files and package records.
 */
import { PassThrough } from 'node:stream';
import type { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../../shared/errors.ts';
import { errorJson, formatError, jobAdvice } from '../../../../producer/cli/advice.ts';
import { joinFiles } from '../../../../producer/cli/commands/ls.ts';
import { describeResult, resultHasFailures } from '../../../../producer/cli/describe.ts';
import {
  SpeedMeter,
  normalizeProgress,
  reasonCode,
  type TrackedJob,
} from '../../../../producer/cli/follow.ts';
import { ellipsize, formatDuration, formatSpeed, table } from '../../../../producer/cli/format.ts';
import type { CliIo } from '../../../../producer/cli/io.ts';
import { createView } from '../../../../producer/cli/views.ts';

function capture(): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      out: t => void (out += t),
      err: t => void (err += t),
      isTTY: false,
      columns: 120,
      rows: 40,
      env: {},
      barStream: new PassThrough(),
    },
    out: () => out,
    err: () => err,
  };
}

const queue = (name: string): Queue => ({ name }) as unknown as Queue;

describe('progress and failures', () => {
  it('normalises every progress shape the processors report', () => {
    expect(normalizeProgress({ bytesSent: 10, total: 40, phase: 'uploading parts' })).toEqual({
      done: 10,
      total: 40,
      phase: 'uploading parts',
    });
    expect(normalizeProgress({ bytes: 5, total: 9, percent: 55 })).toEqual({
      done: 5,
      total: 9,
      phase: undefined,
    });
    expect(normalizeProgress(50, 200)).toEqual({ done: 100, total: 200, phase: undefined });
    expect(normalizeProgress(null, 7)).toEqual({ done: undefined, total: 7, phase: undefined });
    expect(normalizeProgress({ done: 2, total: 5 })).toEqual({
      done: 2,
      total: 5,
      phase: undefined,
    });
  });

  it('measures speed over a sliding window', () => {
    const m = new SpeedMeter(5_000);
    expect(m.add(0, 1_000)).toBeUndefined();
    expect(m.add(1_000_000, 2_000)).toBe(1_000_000);
    expect(m.add(3_000_000, 3_000)).toBe(1_500_000);
    // Old samples leave the window.
    expect(m.add(4_000_000, 10_000)).toBeCloseTo((4_000_000 - 3_000_000) / 7, 0);
  });

  it('reads the stable code a failure reason starts with', () => {
    expect(reasonCode('[PACKAGE_EXISTS] A package ...')).toBe('PACKAGE_EXISTS');
    expect(reasonCode('socket hang up')).toBeUndefined();
  });
});

describe('advice', () => {
  it('prints the code, the message and a hint; no stack unless JCDS_DEBUG', () => {
    const err = new AppError('REDIS_UNAVAILABLE', 'Cannot reach Redis at redis://127.0.0.1:6390/.');
    const text = formatError(err);
    expect(text).toMatch(
      /^jcds: \[REDIS_UNAVAILABLE\] Cannot reach Redis at redis:\/\/127\.0\.0\.1:6390\/\./,
    );
    expect(text).toContain('REDIS_URL');
    expect(text).not.toMatch(/\n\s+at /);
    expect(formatError(err, { JCDS_DEBUG: '1' })).toContain('cli-output.test.ts');
    expect(formatError(new Error('boom'))).toContain('rerun with JCDS_DEBUG=1');
  });

  it('never shows a secret, even in an unexpected error', () => {
    const text = formatError(new Error('failed: Authorization: Bearer abcdefghijklmnopqrstu'));
    expect(text).not.toContain('abcdefghijklmnopqrstu');
    const json = errorJson(new Error('client_secret=hunter2hunter2'), 1);
    expect(JSON.stringify(json)).not.toContain('hunter2hunter2');
    expect(json).toMatchObject({ event: 'error', code: 'INTERNAL', exitCode: 1 });
  });

  it('says what to do about a failed job, by code', () => {
    expect(jobAdvice('PACKAGE_EXISTS')).toContain('--if-exists replace');
    expect(jobAdvice('VERIFY_FAILED')).toContain('upload it again');
    expect(jobAdvice(undefined)).toContain('jcds status');
  });
});

describe('results and tables', () => {
  it('describes finished uploads, downloads and syncs', () => {
    expect(
      describeResult(
        'upload',
        { packageId: '7', outcome: 'created', size: 2 * 1024 * 1024, transport: 's3' },
        2_000,
      ),
    ).toBe('package 7 created, verified, 2.0 MiB via s3 in 2.0 s (1.0 MiB/s)');
    expect(
      describeResult('upload', {
        packageId: '7',
        outcome: 'unchanged',
        size: 1024,
        transport: 's3',
      }),
    ).toContain('unchanged (same hash already in Jamf)');
    expect(describeResult('download', { path: '/x/a.pkg', size: 1024, verified: true })).toBe(
      'saved to /x/a.pkg, 1.0 KiB, verified',
    );
    expect(describeResult('sync', { uploaded: 2, downloaded: 0, unchanged: 3, failed: 1 })).toBe(
      '2 uploaded, 0 downloaded, 3 unchanged, 1 failed',
    );
    expect(describeResult('sync', { skipped: 'another run is active' })).toBe(
      'skipped: another run is active',
    );
    expect(resultHasFailures({ failed: 1 })).toBe(true);
    expect(resultHasFailures({ failed: 0 })).toBe(false);
  });

  it('formats durations, speeds and aligned tables', () => {
    expect(formatDuration(450)).toBe('450 ms');
    expect(formatDuration(61_000)).toBe('1 min 1 s');
    expect(formatSpeed(undefined)).toBe('-');
    expect(ellipsize('abcdefghij', 5)).toBe('ab…ij');
    expect(
      table(
        ['A', 'SIZE'],
        [
          ['x', '1'],
          ['long', '100'],
        ],
        { right: [1] },
      ),
    ).toBe('A     SIZE\nx        1\nlong   100\n');
  });
});

describe('views', () => {
  const job: TrackedJob = { queue: queue('upload'), jobId: '12', label: 'Firefox.pkg', size: 100 };

  it('--json: one object per event, with the job reference', () => {
    const c = capture();
    const view = createView(c.io, { json: true, jobs: [job] });
    view.onEvent({ type: 'active', job });
    view.onEvent({
      type: 'progress',
      job,
      progress: { done: 50, total: 100, phase: 'uploading' },
      speed: 1234.4,
    });
    view.onEvent({ type: 'completed', job, result: { packageId: '3' }, durationMs: 10 });
    view.onEvent({ type: 'failed', job, reason: '[FILE_CHANGED] changed', code: 'FILE_CHANGED' });
    const lines = c
      .out()
      .trim()
      .split('\n')
      .map(l => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { event: 'active', queue: 'upload', jobId: '12', fileName: 'Firefox.pkg' },
      {
        event: 'progress',
        queue: 'upload',
        jobId: '12',
        fileName: 'Firefox.pkg',
        unit: 'bytes',
        done: 50,
        bytesDone: 50,
        total: 100,
        phase: 'uploading',
        bytesPerSecond: 1234,
      },
      {
        event: 'completed',
        queue: 'upload',
        jobId: '12',
        fileName: 'Firefox.pkg',
        durationMs: 10,
        result: { packageId: '3' },
      },
      {
        event: 'failed',
        queue: 'upload',
        jobId: '12',
        fileName: 'Firefox.pkg',
        code: 'FILE_CHANGED',
        reason: '[FILE_CHANGED] changed',
      },
    ]);
    expect(c.err()).toBe('');
  });

  it('not a terminal: plain lines on stderr, nothing on stdout; a sync counts jobs', () => {
    const c = capture();
    const sync: TrackedJob = { queue: queue('sync'), jobId: '4', label: '/srv/pkgs', unit: 'jobs' };
    const view = createView(c.io, { json: false, jobs: [job, sync] });
    view.onEvent({ type: 'active', job });
    view.onEvent({
      type: 'progress',
      job,
      progress: { done: 50, total: 100, phase: 'uploading' },
      speed: 2048,
    });
    view.onEvent({
      type: 'progress',
      job: sync,
      progress: { done: 1, total: 3, phase: undefined },
      speed: undefined,
    });
    view.onEvent({ type: 'retrying', job, attemptsMade: 1, reason: 'socket hang up' });
    view.onEvent({
      type: 'completed',
      job,
      result: { packageId: '3', outcome: 'created', size: 100, transport: 's3' },
      durationMs: 1000,
    });
    view.close();
    expect(c.out()).toBe('');
    const err = c.err();
    expect(err).toContain('… Firefox.pkg [upload 12]: started');
    expect(err).toContain('… Firefox.pkg: 50% 50 B of 100 B 2.0 KiB/s (uploading)');
    expect(err).toContain('… /srv/pkgs: 33% 1 job of 3 jobs');
    expect(err).toContain('↻ Firefox.pkg [upload 12]: attempt 1 failed, retrying: socket hang up');
    expect(err).toContain(
      '✔ Firefox.pkg [upload 12]: package 3 created, verified, 100 B via s3 in 1.0 s',
    );
  });
});

describe('ls', () => {
  it('joins JCDS files and package records on the file name', () => {
    const rows = joinFiles(
      [
        { fileName: 'b.pkg', length: 10, md5: 'm', sha3: 's', region: 'r' },
        { fileName: 'orphan.dmg', length: 5, md5: undefined, sha3: undefined, region: undefined },
      ],
      [
        { id: '1', packageName: 'B', fileName: 'b.pkg', size: '10' } as never,
        {
          id: '2',
          packageName: 'A',
          fileName: 'a.pkg',
          size: 7,
          hashType: 'SHA3_512',
          hashValue: 'h',
          sha256: 'x',
        } as never,
      ],
    );
    expect(rows).toEqual([
      {
        fileName: 'a.pkg',
        size: 7,
        sha256: 'x',
        sha3: 'h',
        md5: null,
        packageId: '2',
        packageName: 'A',
        inJcds: false,
      },
      {
        fileName: 'b.pkg',
        size: 10,
        sha256: null,
        sha3: 's',
        md5: 'm',
        packageId: '1',
        packageName: 'B',
        inJcds: true,
      },
      {
        fileName: 'orphan.dmg',
        size: 5,
        sha256: null,
        sha3: null,
        md5: null,
        packageId: null,
        packageName: null,
        inJcds: true,
      },
    ]);
  });
});
