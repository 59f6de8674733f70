/**
 * How `--wait` shows jobs: NDJSON events on stdout (`--json`), cli-progress bars on a
 * terminal (one bar per file in flight plus an overall bar; finished files are printed
 * above the bars), or plain lines on stderr when stderr is not a terminal (CI logs).
 */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { describeResult } from './describe.ts';
import type { FollowEvent, TrackedJob } from './follow.ts';
import { ellipsize, formatBytes, formatSpeed } from './format.ts';
import { emitJson, type CliIo } from './io.ts';

export interface JobView {
  onEvent(e: FollowEvent): void;
  /** A message for people (above the bars on a terminal). */
  note(text: string): void;
  close(): void;
}

/** The identifying fields of a job in --json output. */
export function jobRef(job: TrackedJob): Record<string, unknown> {
  const key = job.queue.name === 'sync' ? 'dir' : 'fileName';
  return { queue: job.queue.name, jobId: job.jobId, [key]: job.label };
}

/** Formats a progress amount in the job's unit. */
export function amount(job: TrackedJob, n: number): string {
  return job.unit === 'jobs' ? `${n} job${n === 1 ? '' : 's'}` : formatBytes(n);
}

export function createView(io: CliIo, options: { json: boolean; jobs: TrackedJob[] }): JobView {
  if (options.json) return jsonView(io);
  return io.isTTY ? barView(io, options.jobs) : lineView(io);
}

function jsonView(io: CliIo): JobView {
  return {
    onEvent: e => {
      const ref = jobRef(e.job);
      switch (e.type) {
        case 'active':
          emitJson(io, { event: 'active', ...ref });
          break;
        case 'progress':
          emitJson(io, {
            event: 'progress',
            ...ref,
            unit: e.job.unit ?? 'bytes',
            done: e.progress.done ?? null,
            bytesDone: e.job.unit === 'jobs' ? null : (e.progress.done ?? null),
            total: e.progress.total ?? null,
            phase: e.progress.phase ?? null,
            bytesPerSecond: e.speed === undefined ? null : Math.round(e.speed),
          });
          break;
        case 'retrying':
          emitJson(io, {
            event: 'retrying',
            ...ref,
            attemptsMade: e.attemptsMade,
            reason: e.reason,
          });
          break;
        case 'completed':
          emitJson(io, {
            event: 'completed',
            ...ref,
            durationMs: e.durationMs ?? null,
            result: e.result,
          });
          break;
        case 'failed':
          emitJson(io, { event: 'failed', ...ref, code: e.code ?? null, reason: e.reason });
          break;
      }
    },
    note: text => io.err(`${text}\n`),
    close: () => undefined,
  };
}

function finishedLine(e: FollowEvent): string | undefined {
  const name = `${e.job.label} [${e.job.queue.name} ${e.job.jobId}]`;
  if (e.type === 'completed')
    return `✔ ${name}: ${describeResult(e.job.queue.name, e.result, e.durationMs)}`;
  if (e.type === 'failed') return `✘ ${name}: ${e.reason}`;
  if (e.type === 'retrying')
    return `↻ ${name}: attempt ${e.attemptsMade} failed, retrying: ${e.reason}`;
  return undefined;
}

function lineView(io: CliIo): JobView {
  const last = new Map<TrackedJob, { at: number; phase: string | undefined }>();
  return {
    onEvent: e => {
      const done = finishedLine(e);
      if (done) {
        io.err(`${done}\n`);
        return;
      }
      if (e.type === 'active') {
        io.err(`… ${e.job.label} [${e.job.queue.name} ${e.job.jobId}]: started\n`);
        return;
      }
      if (e.type !== 'progress') return;
      const prev = last.get(e.job);
      const now = Date.now();
      // At most one line every 5 s per job, or when its phase changes.
      if (prev && prev.phase === e.progress.phase && now - prev.at < 5_000) return;
      last.set(e.job, { at: now, phase: e.progress.phase });
      const { done: d, total } = e.progress;
      const pct = d !== undefined && total ? ` ${Math.floor((d * 100) / total)}%` : '';
      const bytes =
        d !== undefined ? ` ${amount(e.job, d)}${total ? ` of ${amount(e.job, total)}` : ''}` : '';
      const speed = e.speed && e.job.unit !== 'jobs' ? ` ${formatSpeed(e.speed)}` : '';
      io.err(
        `… ${e.job.label}:${pct}${bytes}${speed}${e.progress.phase ? ` (${e.progress.phase})` : ''}\n`,
      );
    },
    note: text => io.err(`${text}\n`),
    close: () => undefined,
  };
}

function barView(io: CliIo, jobs: TrackedJob[]): JobView {
  const multi = new MultiBar(
    {
      stream: io.barStream,
      format:
        ' {label} |{bar}| {percentage}% {doneText}/{totalText} {speedText} ETA {eta_formatted}',
      barsize: Math.max(10, Math.min(30, io.columns - 80)),
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
      fps: 5,
    },
    Presets.shades_classic,
  );
  const maxBars = Math.max(1, Math.min(15, io.rows - 4));
  const totalBytes = jobs.reduce((s, j) => s + (j.size ?? 0), 0);
  const overallDone = new Map<TrackedJob, number>();
  let finished = 0;
  const overall = multi.create(Math.max(1, totalBytes), 0, {
    label: `all ${jobs.length} job(s)`.padEnd(28),
    doneText: formatBytes(0),
    totalText: formatBytes(totalBytes),
    speedText: '',
  });
  const bars = new Map<TrackedJob, SingleBar>();
  const started = Date.now();

  const updateOverall = (): void => {
    const done = [...overallDone.values()].reduce((a, b) => a + b, 0);
    const secs = (Date.now() - started) / 1000;
    overall.update(Math.min(done, Math.max(1, totalBytes)), {
      label: `all: ${finished}/${jobs.length} done`.padEnd(28),
      doneText: formatBytes(done),
      speedText: secs > 1 ? formatSpeed(done / secs) : '',
    });
  };
  const barFor = (job: TrackedJob, total: number): SingleBar | undefined => {
    let bar = bars.get(job);
    if (!bar && bars.size < maxBars) {
      bar = multi.create(Math.max(1, total), 0, {
        label: ellipsize(job.label, 28).padEnd(28),
        doneText: amount(job, 0),
        totalText: amount(job, total),
        speedText: '',
      });
      bars.set(job, bar);
    }
    return bar;
  };

  return {
    onEvent: e => {
      const line = finishedLine(e);
      if (e.type === 'completed' || e.type === 'failed') {
        finished++;
        if (e.job.size !== undefined) overallDone.set(e.job, e.job.size);
        const bar = bars.get(e.job);
        if (bar) {
          multi.remove(bar);
          bars.delete(e.job);
        }
        updateOverall();
      }
      if (line) multi.log(`${line}\n`);
      if (e.type === 'active') barFor(e.job, e.job.size ?? 0);
      if (e.type === 'progress' && e.progress.done !== undefined) {
        const total = e.progress.total ?? e.job.size ?? 0;
        const bar = barFor(e.job, total);
        bar?.setTotal(Math.max(1, total));
        bar?.update(Math.min(e.progress.done, Math.max(1, total)), {
          doneText: amount(e.job, e.progress.done),
          totalText: amount(e.job, total),
          speedText: `${e.job.unit === 'jobs' || !e.speed ? '' : formatSpeed(e.speed)}${e.progress.phase ? ` ${e.progress.phase}` : ''}`,
        });
        if (e.job.unit !== 'jobs') overallDone.set(e.job, e.progress.done);
        updateOverall();
      }
    },
    note: text => multi.log(`${text}\n`),
    close: () => multi.stop(),
  };
}
