/**
 * What the dashboard shows of a job (worker/monitor/present.ts): names from what a job
 * moves, progress in bytes and percent, failure reasons with their code and advice first
 * and no stack traces, no "N started" badge.
 */
import { describe, expect, it } from 'vitest';
import {
  cardName,
  displayName,
  formatProgress,
  presentJob,
  presentLog,
  presentReason,
  stripStack,
} from '../../../worker/monitor/present.ts';
import { ERROR_REGISTRY } from '../../../shared/errors.ts';
import { MiB } from '../../../shared/units.ts';

const upload = (over: Record<string, unknown> = {}) => ({
  id: '4',
  name: 'upload Office 16.9.pkg',
  data: { fileName: 'Office 16.9.pkg', size: 48 * MiB, step: 'complete' },
  progress: { bytesSent: 12 * MiB, total: 48 * MiB, phase: 'uploading parts' },
  attemptsMade: 0,
  attemptsStarted: 2,
  stacktrace: [],
  failedReason: undefined as string | undefined,
  ...over,
});

describe('names', () => {
  it('keeps a name that says what the job moves, and builds one for generic names', () => {
    expect(displayName('upload', upload())).toBe('upload Office 16.9.pkg');
    expect(displayName('upload', upload({ name: 'upload' }))).toBe('upload Office 16.9.pkg');
    expect(
      displayName('upload-part', { name: 'part', data: { fileName: 'A.pkg', partNumber: 3 } }),
    ).toBe('part 3 of A.pkg');
    expect(displayName('upload-part', { name: 'hash', data: { fileName: 'A.pkg' } })).toBe(
      'hash of A.pkg',
    );
    expect(displayName('download', { name: 'download', data: { fileName: 'A.pkg' } })).toBe(
      'download A.pkg',
    );
    expect(
      displayName('sync', {
        name: 'sync',
        data: { dir: '/srv/pkgs', direction: 'up', schedule: 'nightly' },
      }),
    ).toBe('sync up /srv/pkgs (schedule nightly)');
  });

  it('puts the bytes on the card: sent of total while it runs, the size once done', () => {
    expect(cardName('upload', upload())).toBe(
      'upload Office 16.9.pkg · 12.0 MiB of 48.0 MiB (25%)',
    );
    expect(
      cardName(
        'upload',
        upload({ finishedOn: 1, progress: { bytesSent: 48 * MiB, total: 48 * MiB } }),
      ),
    ).toBe('upload Office 16.9.pkg · 48.0 MiB');
    expect(
      cardName('upload-part', {
        name: 'part 3/6 of A.pkg',
        data: { fileName: 'A.pkg', partNumber: 3, length: 8 * MiB },
      }),
    ).toBe('part 3/6 of A.pkg · 8.0 MiB');
    expect(
      cardName('download', {
        name: 'download A.pkg',
        data: { fileName: 'A.pkg' },
        progress: { bytes: 1 * MiB, total: 4 * MiB, percent: 25 },
      }),
    ).toBe('download A.pkg · 1.0 MiB of 4.0 MiB (25%)');
  });
});

describe('progress', () => {
  it('is a percentage the card draws, with the amounts beside it', () => {
    expect(formatProgress('upload', upload().progress)).toEqual({
      progress: 25,
      done: '12.0 MiB of 48.0 MiB (25%)',
      phase: 'uploading parts',
    });
    expect(formatProgress('download', { bytes: 3, total: 4, percent: 75 })).toEqual({
      progress: 75,
      done: '3 B of 4 B (75%)',
    });
    expect(formatProgress('sync', { done: 1, total: 4 })).toEqual({
      progress: 25,
      done: '1 job of 4 jobs (25%)',
    });
    expect(formatProgress('upload', 40)).toBe(40);
  });
});

describe('failures', () => {
  const stack = [
    '[S3_ERROR] S3 refused UploadPart 3 of Office 16.9.pkg: InternalError (HTTP 500)',
    '    at MultipartEngine.sendPart (file:///work/main/shared/upload/multipart.ts:101:13)',
    '    at async processPart (file:///work/main/worker/processors/upload-part.ts:60:12)',
  ].join('\n');

  it('strips stack frames and file URLs', () => {
    expect(stripStack(stack)).toBe(
      '[S3_ERROR] S3 refused UploadPart 3 of Office 16.9.pkg: InternalError (HTTP 500)',
    );
    expect(stripStack('failed in file:///work/main/worker/x.ts:1:2')).toBe('failed in x.ts:1:2');
  });

  it('shows the code and the advice first, with the job id, redacted', () => {
    const kept = upload({ data: { ...upload().data, resume: true } });
    const text = presentReason('upload', kept, `${stack} Bearer abcdefghijklmnop0123`);
    expect(text).toMatch(
      /^\[S3_ERROR\] What to do: Fix the cause, then Retry \(or `jcds retry 4`\)/,
    );
    expect(text).toContain('InternalError (HTTP 500)');
    expect(text).not.toContain('file://');
    expect(text).not.toContain('abcdefghijklmnop0123');
    // Any code's advice is the registry's (jobHint, else hint).
    expect(
      presentReason('upload', upload({ data: {} }), '[PACKAGE_EXISTS] Office.pkg exists'),
    ).toBe(
      `[PACKAGE_EXISTS] What to do: ${ERROR_REGISTRY.PACKAGE_EXISTS.jobHint} · Office.pkg exists`,
    );
    expect(presentReason('upload-part', { id: '4-p3' }, '[S3_ERROR] nope')).toBe(
      '[S3_ERROR] What to do: Retry its upload (job 4 in the upload queue, or `jcds retry 4`): it sends the parts not done. · nope',
    );
    expect(presentReason('download', { id: '9' }, 'no code here')).toBe('no code here');
  });

  it('the job JSON: no stack trace, no attemptsStarted, the reason presented', () => {
    const json = presentJob('upload', upload({ failedReason: stack, stacktrace: [stack] }));
    expect(json.stacktrace).toEqual([]);
    expect(json).not.toHaveProperty('attemptsStarted');
    expect(json.failedReason).toMatch(/^\[S3_ERROR\] S3 refused UploadPart 3/);
    expect(json.failedReason).not.toContain('file://');
    expect(presentLog(`oops\n    at f (file:///a/b.ts:1:1)`)).toBe('oops');
  });
});
