/**
 * Follows jobs until each one ends (`--wait`). Polling, not QueueEvents: the progress of
 * a multipart upload is written into the parent job's hash by its part children (no
 * progress event is emitted for it), and polling survives a Redis restart without losing
 * events. One pipelined round trip per tick reads every unfinished job's progress,
 * attempts and finishedOn; a job that has finished is then read once through BullMQ for
 * its state, return value and failure reason.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { parseReason } from '../../shared/errors.ts';

export interface TrackedJob {
  queue: Queue;
  jobId: string;
  /** What people know the job by: the file name, the folder. */
  label: string;
  /** Expected bytes, when known before the job reports progress. */
  size?: number | undefined;
  /** What progress counts: bytes (uploads, downloads) or finished jobs (a sync). */
  unit?: 'bytes' | 'jobs';
}

export interface ProgressSample {
  done: number | undefined;
  total: number | undefined;
  phase: string | undefined;
}

export type FollowEvent =
  | { type: 'active'; job: TrackedJob }
  | { type: 'progress'; job: TrackedJob; progress: ProgressSample; speed: number | undefined }
  | { type: 'retrying'; job: TrackedJob; attemptsMade: number; reason: string }
  | { type: 'completed'; job: TrackedJob; result: unknown; durationMs: number | undefined }
  | { type: 'failed'; job: TrackedJob; reason: string; code: string | undefined };

export interface FollowOutcome {
  job: TrackedJob;
  state: 'completed' | 'failed';
  result?: unknown;
  reason?: string;
  code?: string | undefined;
  durationMs?: number | undefined;
}

export interface FollowOptions {
  intervalMs?: number;
  signal?: AbortSignal;
  /** Called once when nothing has started after `idleWarnMs` and no worker is connected. */
  onIdle?: (queues: string[]) => void;
  idleWarnMs?: number;
}

/** Reads the `[CODE]` a failure reason starts with (`parseReason` in shared/errors.ts). */
export function reasonCode(reason: string): string | undefined {
  return parseReason(reason).code;
}

/** Accepts every progress shape the processors report: a percentage or byte counts. */
export function normalizeProgress(raw: unknown, size?: number): ProgressSample {
  if (typeof raw === 'number' && Number.isFinite(raw)) {
    return {
      done: size === undefined ? undefined : Math.round((size * raw) / 100),
      total: size,
      phase: undefined,
    };
  }
  if (typeof raw !== 'object' || raw === null)
    return { done: undefined, total: size, phase: undefined };
  const o = raw as Record<string, unknown>;
  const num = (...keys: string[]): number | undefined => {
    for (const k of keys) if (typeof o[k] === 'number' && Number.isFinite(o[k])) return o[k];
    return undefined;
  };
  return {
    done: num('bytesSent', 'bytesDone', 'bytesFetched', 'bytes', 'loaded', 'done'),
    total: num('total', 'size', 'bytesTotal') ?? size,
    phase: typeof o['phase'] === 'string' ? o['phase'] : undefined,
  };
}

/** Speed over a sliding window of samples (bytes per second). */
export class SpeedMeter {
  private readonly samples: Array<[number, number]> = [];
  private readonly windowMs: number;

  constructor(windowMs = 5_000) {
    this.windowMs = windowMs;
  }

  add(bytes: number, at = Date.now()): number | undefined {
    this.samples.push([at, bytes]);
    while (this.samples.length > 2 && at - this.samples[0]![0] > this.windowMs)
      this.samples.shift();
    const [t0, b0] = this.samples[0]!;
    return at - t0 >= 250 ? ((bytes - b0) * 1000) / (at - t0) : undefined;
  }
}

interface JobState {
  seenActive: boolean;
  attempts: number;
  lastProgress: string | null;
  meter: SpeedMeter;
  missingTicks: number;
}

const FIELDS = [
  'progress',
  'processedOn',
  'finishedOn',
  'attemptsMade',
  'failedReason',
  'timestamp',
] as const;

/** Follows `jobs` until every one is completed or failed (or `signal` aborts). */
export async function followJobs(
  redis: Redis,
  jobs: TrackedJob[],
  onEvent: (e: FollowEvent) => void,
  options: FollowOptions = {},
): Promise<FollowOutcome[]> {
  const interval = options.intervalMs ?? 500;
  const states = new Map<TrackedJob, JobState>(
    jobs.map(j => [
      j,
      {
        seenActive: false,
        attempts: 0,
        lastProgress: null,
        meter: new SpeedMeter(),
        missingTicks: 0,
      },
    ]),
  );
  const outcomes = new Map<TrackedJob, FollowOutcome>();
  const started = Date.now();
  let idleWarned = false;

  while (outcomes.size < jobs.length && !options.signal?.aborted) {
    const open = jobs.filter(j => !outcomes.has(j));
    const pipe = redis.pipeline();
    for (const j of open) pipe.hmget(j.queue.toKey(j.jobId), ...FIELDS);
    const replies = (await pipe.exec()) ?? [];
    const finished: TrackedJob[] = [];
    for (const [i, j] of open.entries()) {
      const [err, values] = replies[i] ?? [];
      if (err) throw err;
      const [
        progress = null,
        processedOn = null,
        finishedOn = null,
        attemptsMade = null,
        failedReason = null,
        timestamp = null,
      ] = (values ?? []) as Array<string | null>;
      const st = states.get(j)!;
      if (timestamp === null) {
        // Every job hash has a timestamp: this one is gone (removed). A few ticks of grace.
        if (++st.missingTicks > 20) {
          const reason = 'The job no longer exists in Redis (it was removed); check `jcds status`.';
          outcomes.set(j, { job: j, state: 'failed', reason, code: undefined });
          onEvent({ type: 'failed', job: j, reason, code: undefined });
        }
        continue;
      }
      if (!st.seenActive && processedOn !== null) {
        st.seenActive = true;
        onEvent({ type: 'active', job: j });
      }
      const attempts = Number(attemptsMade ?? 0);
      if (attempts > st.attempts && finishedOn === null && failedReason) {
        onEvent({ type: 'retrying', job: j, attemptsMade: attempts, reason: failedReason });
      }
      st.attempts = Math.max(st.attempts, attempts);
      if (progress !== null && progress !== st.lastProgress) {
        st.lastProgress = progress;
        let parsed: unknown;
        try {
          parsed = JSON.parse(progress);
        } catch {
          parsed = undefined;
        }
        const sample = normalizeProgress(parsed, j.size);
        const speed = sample.done === undefined ? undefined : st.meter.add(sample.done);
        onEvent({ type: 'progress', job: j, progress: sample, speed });
      }
      if (finishedOn !== null) finished.push(j);
    }
    for (const j of finished) {
      const outcome = await readOutcome(j);
      if (!outcome) continue;
      outcomes.set(j, outcome);
      if (outcome.state === 'completed') {
        onEvent({
          type: 'completed',
          job: j,
          result: outcome.result,
          durationMs: outcome.durationMs,
        });
      } else {
        onEvent({ type: 'failed', job: j, reason: outcome.reason ?? 'failed', code: outcome.code });
      }
    }
    if (!idleWarned && options.onIdle && Date.now() - started > (options.idleWarnMs ?? 8_000)) {
      idleWarned = true;
      if (![...states.values()].some(s => s.seenActive) && outcomes.size === 0) {
        const idle: string[] = [];
        for (const q of new Set(open.map(j => j.queue))) {
          if ((await q.getWorkersCount().catch(() => 1)) === 0) idle.push(q.name);
        }
        if (idle.length > 0) options.onIdle(idle);
      }
    }
    if (outcomes.size < jobs.length)
      await sleep(interval, undefined, { signal: options.signal }).catch(() => undefined);
  }
  return jobs.filter(j => outcomes.has(j)).map(j => outcomes.get(j)!);
}

async function readOutcome(j: TrackedJob): Promise<FollowOutcome | undefined> {
  const state = await j.queue.getJobState(j.jobId);
  const job = await j.queue.getJob(j.jobId);
  if (!job) return undefined;
  const durationMs =
    job.finishedOn && job.processedOn ? job.finishedOn - job.processedOn : undefined;
  const since = (job.data as { startedAt?: unknown } | undefined)?.startedAt;
  const total = typeof since === 'number' && job.finishedOn ? job.finishedOn - since : durationMs;
  if (state === 'completed')
    return { job: j, state: 'completed', result: job.returnvalue, durationMs: total };
  if (state === 'failed') {
    const reason = job.failedReason || 'failed without a reason';
    return { job: j, state: 'failed', reason, code: reasonCode(reason), durationMs: total };
  }
  return undefined;
}
