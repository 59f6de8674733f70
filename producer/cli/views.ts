/**
 * How `--wait` (and `status --follow`) shows jobs: NDJSON events on stdout (`--json`),
 * progress bars on a terminal (one line per file, fitted to the terminal's width, plus an
 * overall line; finished files are printed above them), or plain lines on stderr when
 * stderr is not a terminal (CI logs).
 *
 * A bar says what is true now: "waiting" before a worker takes the job, "retrying part 3
 * (attempt 2/6)" while a part is tried again (instead of a speed and an ETA that no longer
 * move), the phase while Jamf verifies, and a failed job never counts as done.
 */
import { Board } from './board.ts';
import { describeResult } from './describe.ts';
import type { FollowEvent, PartRetry, TrackedJob } from './follow.ts';
import {
  formatAmounts,
  formatBytes,
  formatEta,
  formatSpeed,
  paint,
  progressLines,
  useColor,
  type Paint,
  type ProgressFields,
} from './format.ts';
import { jobRef } from './enqueued.ts';
import { emitJson, type CliIo } from './io.ts';

export interface JobView {
  onEvent(e: FollowEvent): void;
  /** A message for people (above the bars on a terminal). */
  note(text: string): void;
  close(): void;
}

export { jobRef };

/** Formats a progress amount in the job's unit. */
export function amount(job: TrackedJob, n: number): string {
  return job.unit === 'jobs' ? `${n} job${n === 1 ? '' : 's'}` : formatBytes(n);
}

/** "retrying part 3 (attempt 2/6)", or with several parts "retrying parts 3, 5 (attempt 2/6)". */
export function retryText(parts: PartRetry[]): string | undefined {
  if (parts.length === 0) return undefined;
  const worst = parts.reduce((a, b) => (b.attempt > a.attempt ? b : a));
  const of = worst.attempts === undefined ? '' : `/${worst.attempts}`;
  const which =
    parts.length === 1
      ? `part ${parts[0]!.partNumber}`
      : `parts ${parts
          .slice(0, 3)
          .map(p => p.partNumber)
          .join(', ')}${parts.length > 3 ? '…' : ''}`;
  return `retrying ${which} (attempt ${worst.attempt}${of})`;
}

export function createView(io: CliIo, options: { json: boolean; jobs: TrackedJob[] }): JobView {
  if (options.json) return jsonView(io);
  const colors = paint(useColor(io.isTTY, io.env));
  return io.isTTY ? barView(io, options.jobs, colors) : lineView(io, colors);
}

function jsonView(io: CliIo): JobView {
  const partsSeen = new Set<string>();
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
        case 'parts':
          // One object per part and attempt: a part that fails again is a new object.
          for (const p of e.retrying) {
            const key = `${e.job.queue.name}:${e.job.jobId}:${p.partNumber}:${p.attempt}`;
            if (partsSeen.has(key)) continue;
            partsSeen.add(key);
            emitJson(io, {
              event: 'part-retrying',
              ...ref,
              part: p.partNumber,
              attempt: p.attempt,
              attempts: p.attempts ?? null,
              reason: p.reason,
            });
          }
          break;
        case 'retrying':
          emitJson(io, {
            event: 'retrying',
            ...ref,
            attemptsMade: e.attemptsMade,
            attempts: e.attempts ?? null,
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

/** What happened to a job, as one message, and how it reads: done, failed, retrying. */
export function finishedText(
  e: FollowEvent,
): { text: string; tone: 'ok' | 'failed' | 'retry' } | undefined {
  const name = `${e.job.label} [${e.job.queue.name} ${e.job.jobId}]`;
  if (e.type === 'completed')
    return {
      text: `✔ ${name}: ${describeResult(e.job.queue.name, e.result, e.durationMs)}`,
      tone: 'ok',
    };
  if (e.type === 'failed') return { text: `✘ ${name}: ${e.reason}`, tone: 'failed' };
  if (e.type === 'retrying') {
    const of = e.attempts === undefined ? '' : ` of ${e.attempts}`;
    return {
      text: `↻ ${name}: attempt ${e.attemptsMade}${of} failed, retrying: ${e.reason}`,
      tone: 'retry',
    };
  }
  if (e.type === 'parts' && e.retrying.length > 0) {
    const p = e.retrying.reduce((a, b) => (b.attempt > a.attempt ? b : a));
    const why = p.reason ? `: ${p.reason}` : ' (failed again, for the same reason)';
    return { text: `↻ ${name}: ${retryText([p])}${why}`, tone: 'retry' };
  }
  return undefined;
}

function toneOf(colors: Paint, tone: 'ok' | 'failed' | 'retry'): (text: string) => string {
  if (tone === 'failed') return colors.red;
  if (tone === 'retry') return colors.yellow;
  return t => t.replace(/^✔/, colors.green('✔'));
}

/** The line printed once a job ends or retries (above the bars, or as a plain line). */
export function finishedLine(e: FollowEvent, colors: Paint = paint(false)): string | undefined {
  const f = finishedText(e);
  return f ? toneOf(colors, f.tone)(f.text) : undefined;
}

function lineView(io: CliIo, colors: Paint): JobView {
  const last = new Map<TrackedJob, { at: number; phase: string | undefined }>();
  const partsShown = new Map<string, string>();
  return {
    onEvent: e => {
      if (e.type === 'parts') {
        for (const p of freshRetries(partsShown, e)) {
          const line = finishedLine({ ...e, retrying: [p] }, colors);
          if (line) io.err(`${line}\n`);
        }
        return;
      }
      const done = finishedLine(e, colors);
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

/** Phases during which bytes move (a speed and an ETA mean something). */
const TRANSFER_PHASES = new Set([
  'uploading',
  'uploading parts',
  'uploading to Jamf Pro',
  'downloading',
]);

/** What a bar knows about its job. */
export interface BarState {
  job: TrackedJob;
  started: boolean;
  done: number | undefined;
  total: number;
  speed: number | undefined;
  /** When `done` last changed (ms). */
  changedAt: number;
  phase: string | undefined;
  parts: PartRetry[];
  /** The job's own retry: set by a `retrying` event, cleared by progress. */
  retry: { attempt: number; attempts: number | undefined } | undefined;
  /** Completed or failed. */
  ended: boolean;
  /** When the job was first seen running (ms): the average speed until the meter has one. */
  activeAt?: number | undefined;
}

/**
 * The part retries of a `parts` event not reported yet (one line per part and attempt),
 * with the reason only when it differs from the one reported for that part before (a part
 * failing again for the same reason is "failed again").
 */
export function freshRetries(
  seen: Map<string, string>,
  e: Extract<FollowEvent, { type: 'parts' }>,
): PartRetry[] {
  const out: PartRetry[] = [];
  for (const p of e.retrying) {
    const part = `${e.job.queue.name}:${e.job.jobId}:${p.partNumber}`;
    const key = `${part}:${p.attempt}`;
    if (seen.has(key)) continue;
    seen.set(key, '');
    const before = seen.get(part);
    seen.set(part, p.reason);
    out.push(before === p.reason ? { ...p, reason: '' } : p);
  }
  return out;
}

/** The line fields of one job's bar, now. */
export function barFields(s: BarState, now = Date.now()): ProgressFields {
  const ratio = s.done !== undefined && s.total > 0 ? Math.min(1, s.done / s.total) : undefined;
  const amounts =
    s.done === undefined
      ? amount(s.job, s.total)
      : s.job.unit === 'jobs'
        ? `${s.done}/${amount(s.job, s.total)}`
        : formatAmounts(s.done, s.total);
  const stale = now - s.changedAt > 10_000;
  const average =
    s.activeAt !== undefined && s.done !== undefined && s.changedAt > s.activeAt
      ? (s.done * 1000) / (s.changedAt - s.activeAt)
      : undefined;
  const speed = s.speed ?? average;
  const moving = speed !== undefined && speed > 0 && !stale;
  let status: string | undefined;
  if (!s.started) status = 'waiting';
  else if (s.parts.length > 0) status = retryText(s.parts);
  else if (s.retry)
    status = `retrying (attempt ${s.retry.attempt + 1}${s.retry.attempts ? `/${s.retry.attempts}` : ''})`;
  else if (s.phase && !TRANSFER_PHASES.has(s.phase)) status = s.phase;
  else if (s.done === undefined) status = 'starting';
  else if (stale && s.job.unit !== 'jobs' && (ratio ?? 0) < 1)
    status = `no progress for ${formatEta((now - s.changedAt) / 1000)}`;
  const remaining = s.total - (s.done ?? 0);
  return {
    label: s.job.label,
    ratio,
    amounts,
    speed: s.job.unit === 'jobs' || !moving ? '' : formatSpeed(speed),
    eta: moving && remaining > 0 ? formatEta(remaining / speed) : '',
    ...(status !== undefined ? { status } : {}),
  };
}

/** The overall line: finished and failed jobs, and the bytes (or jobs) done of all. */
export function overallFields(
  states: BarState[],
  finished: { completed: number; failed: number },
  startedAt: number,
  now = Date.now(),
): ProgressFields {
  const n = states.length;
  const byBytes = states.every(s => s.job.unit !== 'jobs' && s.job.size !== undefined);
  const total = byBytes ? states.reduce((a, s) => a + s.total, 0) : n;
  const done = byBytes
    ? states.reduce((a, s) => a + (s.done ?? 0), 0)
    : finished.completed + finished.failed;
  const secs = (now - startedAt) / 1000;
  const speed = byBytes && secs > 1 && done > 0 ? done / secs : undefined;
  const left = n - finished.completed - finished.failed;
  const label = `all: ${finished.completed}/${n} done${finished.failed ? `, ${finished.failed} failed` : ''}`;
  const anyStarted = states.some(s => s.started) || left < n;
  const retrying = states.filter(s => s.parts.length > 0).length;
  return {
    label,
    ratio: total > 0 ? Math.min(1, done / total) : undefined,
    amounts: byBytes ? formatAmounts(done, total) : `${done}/${n} jobs`,
    speed: speed ? formatSpeed(speed) : '',
    eta: speed && left > 0 && total > done ? formatEta((total - done) / speed) : '',
    ...(left === 0
      ? { status: finished.failed ? `${finished.failed} failed` : 'done' }
      : !anyStarted
        ? { status: 'waiting' }
        : retrying > 0
          ? { status: `${retrying} retrying` }
          : {}),
  };
}

function barView(io: CliIo, jobs: TrackedJob[], colors: Paint): JobView {
  const startedAt = Date.now();
  const states = new Map<TrackedJob, BarState>(
    jobs.map(job => [
      job,
      {
        job,
        started: false,
        done: undefined,
        total: job.size ?? 0,
        speed: undefined,
        changedAt: Date.now(),
        phase: undefined,
        parts: [],
        retry: undefined,
        ended: false,
      },
    ]),
  );
  const partsShown = new Map<string, string>();
  const finished = { completed: 0, failed: 0 };
  const all = [...states.values()];
  const maxBars = (): number => Math.max(1, Math.min(15, io.rows - 4));
  /** The jobs with a line: unfinished ones, running before waiting, in the given order. */
  const shown = (): BarState[] => {
    const open = all.filter(s => !s.ended);
    return [...open.filter(s => s.started), ...open.filter(s => !s.started)].slice(0, maxBars());
  };
  const board = new Board({
    stream: io.barStream,
    columns: () => io.columns,
    rows: () => io.rows,
    lines: columns => {
      const now = Date.now();
      const rows = shown();
      const fields = [
        overallFields(all, finished, startedAt, now),
        ...rows.map(s => barFields(s, now)),
      ];
      const hidden = all.filter(s => !s.ended).length - rows.length;
      const text = progressLines(fields, columns);
      const painted = text.map((t, i) =>
        i === 0 && finished.failed > 0
          ? colors.red(t)
          : fields[i]!.status?.startsWith('retrying')
            ? colors.yellow(t)
            : t,
      );
      return hidden > 0 ? [...painted, colors.dim(`… and ${hidden} more`)] : painted;
    },
  });
  board.start();

  return {
    onEvent: e => {
      const s = states.get(e.job);
      if (!s) return;
      if (e.type === 'parts') {
        s.parts = e.retrying;
        // Each failed part attempt above the bars, once (the bar says the rest).
        for (const p of freshRetries(partsShown, e)) {
          const f = finishedText({ ...e, retrying: [p] });
          if (f) board.log(f.text, toneOf(colors, f.tone));
        }
        return;
      }
      const f = finishedText(e);
      if (e.type === 'completed' || e.type === 'failed') {
        s.ended = true;
        s.parts = [];
        if (e.type === 'completed') {
          finished.completed++;
          // A finished transfer counts whole (an unchanged upload sent nothing, but it is done).
          s.done = s.total;
        } else {
          finished.failed++;
          // What a failed transfer sent is not published: the totals below leave it out too.
          s.done = 0;
        }
      }
      if (f) board.log(f.text, toneOf(colors, f.tone));
      if (e.type === 'retrying') s.retry = { attempt: e.attemptsMade, attempts: e.attempts };
      if (e.type === 'active' || e.type === 'progress') {
        if (!s.started) s.activeAt = Date.now();
        s.started = true;
      }
      if (e.type === 'progress') {
        s.retry = undefined;
        if (e.progress.total !== undefined) s.total = e.progress.total;
        if (e.progress.done !== undefined && e.progress.done !== s.done) {
          s.done = e.progress.done;
          s.changedAt = Date.now();
        }
        if (e.speed !== undefined) s.speed = e.speed;
        s.phase = e.progress.phase;
      }
    },
    note: text => board.log(text),
    close: () => board.stop(),
  };
}
