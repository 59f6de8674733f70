/**
 * What the terminal shows while jobs run and when they end (issue 15, "the terminal tells
 * the truth"): retries instead of a frozen ETA, "waiting" before a job starts, lines that
 * fit 80 columns, failures in red on a terminal only, totals that agree with the table,
 * advice that names the job and fits the policy that failed, schedules with their zone,
 * the worker's pretty logs on a terminal.
 */
import { PassThrough } from 'node:stream';
import type { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { jobAdvice } from '../../../../producer/cli/advice.ts';
import { Board } from '../../../../producer/cli/board.ts';
import { CRON_HELP, nextRunText } from '../../../../producer/cli/commands/schedule.ts';
import {
  describeResult,
  fileTotals,
  resultBytes,
  totalsLine,
} from '../../../../producer/cli/describe.ts';
import {
  optsAttempts,
  retryingParts,
  type FollowOutcome,
  type TrackedJob,
} from '../../../../producer/cli/follow.ts';
import {
  formatAmounts,
  formatTimeIn,
  paint,
  progressLine,
  progressLines,
  table,
  useColor,
  wrapText,
} from '../../../../producer/cli/format.ts';
import type { CliIo } from '../../../../producer/cli/io.ts';
import type { CliContext } from '../../../../producer/cli/context.ts';
import {
  barFields,
  createView,
  finishedLine,
  overallFields,
  retryText,
  type BarState,
} from '../../../../producer/cli/views.ts';
import { adviceLines, followCommand, report } from '../../../../producer/cli/wait.ts';
import { createLogger, prettyStream } from '../../../../shared/logger.ts';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;
const visible = (s: string): string => s.replace(ANSI, '');
const queue = (name: string): Queue => ({ name }) as unknown as Queue;
const MiB = 1024 * 1024;

function capture(tty = false, env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: t => void (out += t),
    err: t => void (err += t),
    isTTY: tty,
    outIsTTY: tty,
    columns: 80,
    rows: 24,
    env,
    barStream: new PassThrough(),
  };
  return { io, out: () => out, err: () => err };
}

function state(job: TrackedJob, patch: Partial<BarState> = {}): BarState {
  return {
    job,
    started: false,
    done: undefined,
    total: job.size ?? 0,
    speed: undefined,
    changedAt: 1_000,
    phase: undefined,
    parts: [],
    retry: undefined,
    ended: false,
    ...patch,
  };
}

const office: TrackedJob = {
  queue: queue('upload'),
  jobId: '12',
  label: 'Microsoft Office 16.9 Universal Installer.pkg',
  size: 48 * MiB,
};
const zoom: TrackedJob = { queue: queue('upload'), jobId: '13', label: 'Zoom.pkg', size: 6 * MiB };

describe('retries', () => {
  it('reads the parts being retried from the part jobs an upload waits for', () => {
    const rows: Array<[string, Array<string | null>]> = [
      ['{jcds}:upload-part:12-p1', [null, null, null, null, '{"attempts":6}']],
      ['{jcds}:upload-part:12-p3', ['1', null, '[S3_ERROR] 500', null, '{"attempts":6}']],
      ['{jcds}:upload-part:12-p4', ['2', null, 'reset', '1700000000', '{"attempts":6}']],
      ['{jcds}:upload-part:12-r1-p5', [null, '3', 'timeout', null, null]],
    ];
    expect(retryingParts(rows)).toEqual([
      { partNumber: 3, attempt: 2, attempts: 6, reason: '[S3_ERROR] 500' },
      { partNumber: 5, attempt: 4, attempts: undefined, reason: 'timeout' },
    ]);
    expect(optsAttempts('{"attempts":6,"kl":20}')).toBe(6);
    expect(optsAttempts('not json')).toBeUndefined();
  });

  it('a retrying part replaces the speed and ETA: "retrying part 3 (attempt 2/6)"', () => {
    const s = state(office, {
      started: true,
      done: 44 * MiB,
      speed: 5 * MiB,
      changedAt: Date.now(),
      phase: 'uploading parts',
      parts: [{ partNumber: 3, attempt: 2, attempts: 6, reason: 'x' }],
    });
    const f = barFields(s);
    expect(f.status).toBe('retrying part 3 (attempt 2/6)');
    const line = progressLine(f, 80);
    expect(line).toContain('retrying part 3 (attempt 2/6)');
    expect(line).not.toContain('ETA');
    expect(
      retryText([
        { partNumber: 3, attempt: 2, attempts: 6, reason: '' },
        { partNumber: 5, attempt: 3, attempts: 6, reason: '' },
      ]),
    ).toBe('retrying parts 3, 5 (attempt 3/6)');
  });

  it('a job that has not started says "waiting", never "ETA 0s"; a stalled one says so', () => {
    const waiting = progressLine(barFields(state(zoom)), 80);
    expect(waiting).toMatch(/waiting$/);
    expect(waiting).not.toContain('ETA');
    const now = 100_000;
    const stalled = barFields(
      state(zoom, { started: true, done: MiB, speed: MiB, changedAt: now - 25_000 }),
      now,
    );
    expect(stalled.status).toBe('no progress for 25s');
    const moving = barFields(
      state(zoom, { started: true, done: 2 * MiB, speed: MiB, changedAt: now - 1_000 }),
      now,
    );
    expect(moving.eta).toBe('4s');
    expect(moving.status).toBeUndefined();
    expect(
      barFields(state(zoom, { started: true, phase: 'verifying', done: 6 * MiB }), now).status,
    ).toBe('verifying');
  });

  it('--json: one part-retrying object per part and attempt; plain lines say it too', () => {
    const e = {
      type: 'parts' as const,
      job: office,
      retrying: [{ partNumber: 3, attempt: 2, attempts: 6, reason: '[S3_ERROR] 500' }],
    };
    const json = capture();
    const view = createView(json.io, { json: true, jobs: [office] });
    view.onEvent(e);
    view.onEvent(e);
    expect(
      json
        .out()
        .trim()
        .split('\n')
        .map(l => JSON.parse(l) as unknown),
    ).toEqual([
      {
        event: 'part-retrying',
        queue: 'upload',
        jobId: '12',
        fileName: office.label,
        part: 3,
        attempt: 2,
        attempts: 6,
        reason: '[S3_ERROR] 500',
      },
    ]);
    const plain = capture();
    const lines = createView(plain.io, { json: false, jobs: [office] });
    lines.onEvent(e);
    lines.onEvent({ ...e, retrying: [{ ...e.retrying[0]!, attempt: 3 }] });
    expect(plain.err()).toContain(
      `↻ ${office.label} [upload 12]: retrying part 3 (attempt 2/6): [S3_ERROR] 500`,
    );
    expect(plain.err()).toContain(
      'retrying part 3 (attempt 3/6) (failed again, for the same reason)',
    );
    expect(plain.out()).toBe('');
  });
});

describe('fitting 80 columns', () => {
  it('every line fits, and the columns line up', () => {
    const now = Date.now();
    const lines = progressLines(
      [
        overallFields(
          [state(office, { started: true, done: 12 * MiB, changedAt: now }), state(zoom)],
          { completed: 0, failed: 0 },
          now - 10_000,
          now,
        ),
        barFields(
          state(office, { started: true, done: 12 * MiB, speed: 3 * MiB, changedAt: now }),
          now,
        ),
        barFields(state(zoom), now),
      ],
      80,
    );
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(79);
    const pct = lines.map(l => l.indexOf('%'));
    expect(new Set(pct.filter(i => i >= 0)).size).toBe(1);
    // A long name keeps its start and end (which file, which extension).
    expect(lines[1]).toMatch(/^Microsoft Off.*….*Installer\.pkg \|█/);
    expect(lines[2]).toMatch(/waiting$/);
    // Narrower still: the bar goes before the name is cut below 12 characters.
    for (const l of progressLines([barFields(state(office, { started: true, done: MiB }))], 40))
      expect(l.length).toBeLessThanOrEqual(39);
  });

  it('amounts share one unit; messages wrap instead of being cut', () => {
    expect(formatAmounts(16 * MiB, 40 * MiB)).toBe('16.0/40.0 MiB');
    expect(formatAmounts(512 * 1024, 40 * MiB)).toBe('512.0 KiB/40.0 MiB');
    const lines = wrapText(`✘ ${office.label} [upload 12]: ${'word '.repeat(30)}`, 79);
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(79);
    expect(lines[1]).toMatch(/^ {2}\S/);
  });

  it('the board redraws in place, fitted, with messages above', () => {
    const stream = new PassThrough();
    let written = '';
    stream.on('data', (b: Buffer) => (written += b.toString()));
    const board = new Board({
      stream,
      columns: () => 80,
      rows: () => 24,
      lines: columns => progressLines([barFields(state(zoom))], columns),
    });
    board.start();
    board.log(`✔ ${'x'.repeat(150)}`);
    board.draw();
    board.stop();
    const text = visible(written);
    for (const l of text.split('\n')) expect(l.replace(/\r/g, '').length).toBeLessThanOrEqual(79);
    expect(text).toContain('Zoom.pkg');
    expect(written).toContain('\u001b[?25h');
  });

  it('tables fit a width and colour cells without breaking the alignment', () => {
    const red = paint(true);
    const t = table(
      ['JOB', 'NAME', 'STATE', 'RESULT'],
      [
        ['1', 'a.pkg', 'completed', 'x'.repeat(100)],
        ['2', 'b.pkg', 'failed', 'boom'],
      ],
      { maxWidth: 120, fit: 60, style: (row, col, s) => (row === 1 && col === 2 ? red.red(s) : s) },
    );
    const rows = t.trimEnd().split('\n');
    for (const r of rows) expect(visible(r).length).toBeLessThanOrEqual(60);
    expect(rows[2]).toContain('\u001b[31mfailed   \u001b[39m');
    expect(visible(rows[2]!).indexOf('boom')).toBe(visible(rows[1]!).indexOf('xx'));
  });
});

describe('failures and totals', () => {
  it('a failed job is not done: the overall line says how many failed, short of 100%', () => {
    const a = state(office, { started: true, done: 48 * MiB, ended: true });
    const b = state(zoom, { started: true, done: undefined, ended: true });
    const f = overallFields([a, b], { completed: 1, failed: 1 }, 0, 10_000);
    expect(f.label).toBe('all: 1/2 done, 1 failed');
    expect(f.ratio).toBeLessThan(1);
    expect(f.status).toBe('1 failed');
    const waiting = overallFields([state(office), state(zoom)], { completed: 0, failed: 0 }, 0, 1);
    expect(waiting.status).toBe('waiting');
  });

  it('red on a terminal only, and never with NO_COLOR', () => {
    const e = {
      type: 'failed' as const,
      job: zoom,
      reason: '[PACKAGE_EXISTS] x',
      code: 'PACKAGE_EXISTS',
    };
    expect(finishedLine(e, paint(true))).toBe(
      '\u001b[31m✘ Zoom.pkg [upload 13]: [PACKAGE_EXISTS] x\u001b[39m',
    );
    expect(finishedLine(e, paint(false))).toBe('✘ Zoom.pkg [upload 13]: [PACKAGE_EXISTS] x');
    expect(useColor(true, {})).toBe(true);
    expect(useColor(false, {})).toBe(false);
    expect(useColor(true, { NO_COLOR: '1' })).toBe(false);
  });

  it('an upload skipped as unchanged sent nothing: no size moved, no transport, no speed', () => {
    const r = {
      packageId: '7',
      outcome: 'unchanged',
      size: 5_000_000,
      bytesSent: 0,
      transport: 's3',
    };
    const text = describeResult('upload', r, 107);
    expect(text).toBe('package 7 unchanged (same hash already in Jamf), nothing sent in 107 ms');
    expect(text).not.toMatch(/via|\/s/);
    expect(resultBytes(r)).toBe(0);
  });

  it('the totals count files as the table does: a sync of 3 uploaded and 1 failed is not "0 done"', () => {
    const sync = {
      queue: 'sync',
      state: 'completed' as const,
      result: { uploaded: 3, downloaded: 0, unchanged: 0, failed: 1 },
    };
    const t = fileTotals([sync]);
    expect(t).toMatchObject({ done: 3, failed: 1 });
    expect(totalsLine(['sync'], t, 4_000)).toBe('3 file(s) done, 1 failed in 4.0 s');
    const uploads = fileTotals([
      { queue: 'upload', state: 'completed', result: { outcome: 'created', size: 2 * MiB } },
      { queue: 'upload', state: 'completed', result: { outcome: 'unchanged', size: 5 * MiB } },
      { queue: 'upload', state: 'failed' },
    ]);
    expect(totalsLine(['upload'], uploads, 3_000)).toBe(
      '2 done (1 unchanged, nothing sent), 1 failed, 2.0 MiB sent in 3.0 s',
    );
  });

  it('Ctrl-C names the jobs still running and how to follow them again (exit 130)', () => {
    const c = capture();
    const ctx = { io: c.io, exitCode: 0 } as unknown as CliContext;
    const outcomes: FollowOutcome[] = [
      {
        job: zoom,
        state: 'completed',
        result: { outcome: 'created', size: 6 * MiB },
        durationMs: 1,
      },
    ];
    report(ctx, [zoom, office], outcomes, 2_000, false);
    expect(ctx.exitCode).toBe(130);
    expect(c.err()).toContain('Stopped following 1 job(s): upload:12.');
    expect(c.err()).toContain('follow them again with:\n  jcds status --follow upload:12\n');
    const j = capture();
    const jctx = { io: j.io, exitCode: 0 } as unknown as CliContext;
    report(jctx, [zoom, office], outcomes, 2_000, true);
    expect(JSON.parse(j.out())).toMatchObject({
      event: 'summary',
      total: 2,
      completed: 1,
      failed: 0,
      unfinished: 1,
      unfinishedJobs: [{ queue: 'upload', jobId: '12' }],
      follow: 'jcds status --follow upload:12',
    });
    expect(followCommand([zoom, office])).toBe('jcds status --follow upload:13 upload:12');
  });

  it('a sync with failed files: the same counts in its row, its summary and its exit code', () => {
    const c = capture();
    const ctx = { io: c.io, exitCode: 0 } as unknown as CliContext;
    const sync: TrackedJob = { queue: queue('sync'), jobId: '4', label: '/srv/pkgs', unit: 'jobs' };
    report(
      ctx,
      [sync],
      [
        {
          job: sync,
          state: 'completed',
          result: {
            uploaded: 3,
            downloaded: 0,
            unchanged: 0,
            failed: 1,
            failures: [{ fileName: 'Bad.pkg', reason: '[PART_FAILED] part 2 failed' }],
          },
          children: [{ queue: 'upload', jobId: '41', fileName: 'Bad.pkg' }],
          ifExists: 'skip',
        },
      ],
      9_000,
      false,
    );
    expect(ctx.exitCode).toBe(1);
    expect(c.err()).toContain('3 uploaded, 0 downloaded, 0 unchanged, 1 failed');
    expect(c.err()).toContain('3 file(s) done, 1 failed in 9.0 s');
    expect(c.err()).not.toContain('0 done');
    expect(c.err()).toContain('/srv/pkgs: Bad.pkg [upload:41]: [PART_FAILED] part 2 failed');
    expect(c.err()).toContain('`jcds status upload:41`');
    expect(c.err()).not.toContain('JOB_ID');
  });
});

describe('advice', () => {
  it('a name conflict under skip (the default) does not advise skip', () => {
    const skip = jobAdvice('PACKAGE_EXISTS', { ifExists: 'skip' })!;
    expect(skip).toContain('--if-exists replace');
    expect(skip).not.toContain('--if-exists skip');
    const fail = jobAdvice('PACKAGE_EXISTS', { ifExists: 'fail' })!;
    expect(fail).toContain('--if-exists skip (the default)');
  });

  it('names the job instead of the JOB_ID placeholder', () => {
    expect(jobAdvice(undefined, { ref: 'upload:12' })).toContain('`jcds status upload:12`');
    expect(jobAdvice('PART_FAILED', { ref: 'upload:12' })).not.toContain('JOB_ID');
    const lines = adviceLines({
      job: office,
      state: 'failed',
      reason: '[PACKAGE_EXISTS] exists',
      code: 'PACKAGE_EXISTS',
      ifExists: 'skip',
    });
    expect(lines.join('\n')).toContain('rename the file');
  });
});

describe('schedules', () => {
  it('the next run carries its zone', () => {
    const at = Date.UTC(2026, 0, 2, 2, 0);
    expect(formatTimeIn(at, 'UTC')).toBe('2026-01-02 02:00 UTC');
    expect(formatTimeIn(at, 'Europe/Paris')).toBe('2026-01-02 03:00 Europe/Paris');
    expect(nextRunText({ next: at, tz: 'America/New_York' })).toBe(
      '2026-01-01 21:00 America/New_York',
    );
    expect(nextRunText({ next: at })).toMatch(/^2026-01-0\d \d\d:\d\d \S+ \(local\)$/);
    expect(nextRunText({})).toBe('-');
  });

  it('the --cron help says 5 fields, or 6 with seconds first, without contradicting itself', () => {
    expect(CRON_HELP).toContain('5 fields "minute hour day-of-month month day-of-week"');
    expect(CRON_HELP).toContain('6 fields with seconds first');
  });
});

describe('worker logs', () => {
  it('on a terminal: one readable line per record, redacted, stacks only when debugging', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (b: Buffer) => (text += b.toString()));
    const info = createLogger({
      destination: prettyStream('info', { colorize: false, destination: out }),
    });
    info.info({ jobId: '12', token: 'very-secret-token' }, 'worker ready');
    info.warn({ err: new Error('boom') }, 'queue error');
    expect(text).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: worker ready \{"jobId":"12","token":"\[REDACTED\]"\}/,
    );
    expect(text).not.toContain('very-secret-token');
    expect(text).toContain('"message": "boom"');
    expect(text).not.toContain('at ');
    text = '';
    const debug = createLogger({
      level: 'debug',
      destination: prettyStream('debug', { colorize: false, destination: out }),
    });
    debug.debug({ err: new Error('deep') }, 'detail');
    expect(text).toContain('Error: deep');
    expect(text).toMatch(/\n\s+at /);
  });

  it('elsewhere: JSON lines', () => {
    const raw: string[] = [];
    const l = createLogger({ destination: { write: s => void raw.push(s) } });
    l.info({ password: 'p' }, 'hello');
    expect(JSON.parse(raw[0]!)).toMatchObject({ msg: 'hello', password: '[REDACTED]' });
  });
});
