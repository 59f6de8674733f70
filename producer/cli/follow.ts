/**
 * Follows jobs until each one ends (`--wait`, `status --follow`). Polling, not QueueEvents:
 * the progress of a multipart upload is written into the parent job's hash by its part
 * children (no progress event is emitted for it), and polling survives a Redis restart
 * without losing events. One pipelined round trip per tick reads every unfinished job's
 * progress, attempts and finishedOn, and the children an upload still waits for; a second
 * one reads those part jobs' attempts (a part that failed an attempt and waits to be tried
 * again is a `parts` event: "retrying part 3 (attempt 2/6)"). A job that has finished is
 * then read once through BullMQ for its state, return value and failure reason.
 *
 * Between ticks it does not just sleep: a second connection blocks on the followed queues'
 * event streams (XREAD BLOCK, the stream QueueEvents reads) for at most the interval, so a
 * job's completion, failure or progress starts the next tick at once (a command exits as
 * soon as its job ends, not up to an interval later). Without events, or when that read
 * fails (an old Redis, a restart), it is the plain interval.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { parseReason } from '../../shared/errors.ts';
import { parsePartJobId, QUEUES } from '../../shared/queues/names.ts';

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

/** A part of a multipart upload that failed an attempt and is tried again. */
export interface PartRetry {
  partNumber: number;
  /** The attempt under way or next (the failed ones + 1). */
  attempt: number;
  /** Attempts allowed (the part job's `attempts`, JCDS_PART_ATTEMPTS). */
  attempts: number | undefined;
  /** Why the last attempt failed. */
  reason: string;
}

export type FollowEvent =
  | { type: 'active'; job: TrackedJob }
  /** The parts of an upload being retried now (empty: none any more). */
  | { type: 'parts'; job: TrackedJob; retrying: PartRetry[] }
  | { type: 'progress'; job: TrackedJob; progress: ProgressSample; speed: number | undefined }
  | {
      type: 'retrying';
      job: TrackedJob;
      attemptsMade: number;
      /** Attempts allowed (the job's `attempts` option), when known. */
      attempts?: number | undefined;
      reason: string;
    }
  | { type: 'completed'; job: TrackedJob; result: unknown; durationMs: number | undefined }
  | { type: 'failed'; job: TrackedJob; reason: string; code: string | undefined };

export interface FollowOutcome {
  job: TrackedJob;
  state: 'completed' | 'failed';
  result?: unknown;
  reason?: string;
  code?: string | undefined;
  durationMs?: number | undefined;
  /** An upload's --if-exists policy (the advice for PACKAGE_EXISTS depends on it). */
  ifExists?: string | undefined;
  /** A sync's upload or download jobs, by file name (the advice names their ids). */
  children?: Array<{ queue: string; jobId: string; fileName: string }> | undefined;
}

export interface FollowOptions {
  intervalMs?: number;
  /** Ticks woken by events come at least this long after the previous one. @defaultValue 50 */
  minGapMs?: number;
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
  /** The parts retrying at the last tick, as compared text. */
  retryingParts: string;
}

/** BullMQ keeps attemptsMade as `atm` (v5+); `attemptsMade` is the older field. */
const FIELDS = [
  'progress',
  'processedOn',
  'finishedOn',
  'atm',
  'failedReason',
  'timestamp',
  'attemptsMade',
  'opts',
] as const;

const PART_FIELDS = ['atm', 'attemptsMade', 'failedReason', 'finishedOn', 'opts'] as const;

/** The `attempts` of a job's stored options (JSON), if any. */
export function optsAttempts(opts: string | null | undefined): number | undefined {
  if (!opts) return undefined;
  try {
    const a = (JSON.parse(opts) as { attempts?: unknown }).attempts;
    return typeof a === 'number' && a > 0 ? a : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The parts being retried, from the part jobs an upload still waits for (its
 * `dependencies`): a part job not finished whose failed attempts are above zero. Rows are
 * `[childKey, [atm, attemptsMade, failedReason, finishedOn, opts]]`.
 */
export function retryingParts(rows: Array<[string, Array<string | null>]>): PartRetry[] {
  const out: PartRetry[] = [];
  for (const [key, [atm, attemptsMade, failedReason, finishedOn, opts]] of rows) {
    const part = parsePartJobId(key);
    const failed = Number(atm ?? attemptsMade ?? 0);
    if (!part || finishedOn || !(failed > 0)) continue;
    out.push({
      partNumber: part.partNumber,
      attempt: failed + 1,
      attempts: optsAttempts(opts),
      reason: failedReason ?? '',
    });
  }
  return out.sort((a, b) => a.partNumber - b.partNumber);
}

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
        retryingParts: '',
      },
    ]),
  );
  const outcomes = new Map<TrackedJob, FollowOutcome>();
  const started = Date.now();
  let idleWarned = false;
  const wake = new EventWake(
    redis,
    [...new Set(jobs.map(j => j.queue.keys['events']).filter((k): k is string => !!k))],
    options.signal,
  );

  try {
    while (outcomes.size < jobs.length && !options.signal?.aborted) {
      const open = jobs.filter(j => !outcomes.has(j));
      const pipe = redis.pipeline();
      const uploads = open.filter(j => j.queue.name === QUEUES.upload);
      for (const j of open) pipe.hmget(j.queue.toKey(j.jobId), ...FIELDS);
      for (const j of uploads) pipe.smembers(`${j.queue.toKey(j.jobId)}:dependencies`);
      const replies = (await pipe.exec()) ?? [];
      const finished: TrackedJob[] = [];
      const deps = new Map<TrackedJob, string[]>();
      for (const [i, j] of uploads.entries()) {
        const [err, members] = replies[open.length + i] ?? [];
        if (!err && Array.isArray(members) && members.length > 0) deps.set(j, members as string[]);
      }
      const partRows = await readPartRows(redis, deps);
      for (const [i, j] of open.entries()) {
        const [err, values] = replies[i] ?? [];
        if (err) throw err;
        const [
          progress = null,
          processedOn = null,
          finishedOn = null,
          atm = null,
          failedReason = null,
          timestamp = null,
          attemptsMade = null,
          opts = null,
        ] = (values ?? []) as Array<string | null>;
        const st = states.get(j)!;
        if (timestamp === null) {
          // Every job hash has a timestamp: this one is gone (removed). A few ticks of grace.
          if (++st.missingTicks > 20) {
            const reason =
              'The job no longer exists in Redis (it was removed); check `jcds status`.';
            outcomes.set(j, { job: j, state: 'failed', reason, code: undefined });
            onEvent({ type: 'failed', job: j, reason, code: undefined });
          }
          continue;
        }
        if (!st.seenActive && processedOn !== null) {
          st.seenActive = true;
          onEvent({ type: 'active', job: j });
        }
        const attempts = Number(atm ?? attemptsMade ?? 0);
        if (attempts > st.attempts && finishedOn === null && failedReason) {
          onEvent({
            type: 'retrying',
            job: j,
            attemptsMade: attempts,
            attempts: optsAttempts(opts),
            reason: failedReason,
          });
        }
        st.attempts = Math.max(st.attempts, attempts);
        if (j.queue.name === QUEUES.upload && finishedOn === null) {
          const retrying = retryingParts(partRows.get(j) ?? []);
          const text = JSON.stringify(retrying.map(r => [r.partNumber, r.attempt]));
          if (text !== st.retryingParts) {
            st.retryingParts = text;
            onEvent({ type: 'parts', job: j, retrying });
          }
        }
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
          onEvent({
            type: 'failed',
            job: j,
            reason: outcome.reason ?? 'failed',
            code: outcome.code,
          });
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
      if (outcomes.size < jobs.length) await wake.next(interval, options.minGapMs ?? 50);
    }
    return jobs.filter(j => outcomes.has(j)).map(j => outcomes.get(j)!);
  } finally {
    wake.close();
  }
}

/**
 * Waits up to `ms` for an event on the followed queues' event streams (XREAD BLOCK on a
 * connection of its own), never less than `minGapMs`; falls back to the plain wait when the
 * read fails. Reads only the newest ids (COUNT 1): what happened is read from the job hashes.
 */
class EventWake {
  private blocker: Redis | undefined;
  private readonly ids: Map<string, string>;
  private broken = false;
  private last = Date.now();
  private readonly redis: Redis;
  private readonly signal: AbortSignal | undefined;

  constructor(redis: Redis, streams: string[], signal: AbortSignal | undefined) {
    this.redis = redis;
    this.signal = signal;
    this.ids = new Map(streams.map(k => [k, '$']));
    signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  async next(ms: number, minGapMs: number): Promise<void> {
    const since = Date.now() - this.last;
    if (!this.broken && this.ids.size > 0 && !this.signal?.aborted) {
      try {
        this.blocker ??= this.redis.duplicate({
          maxRetriesPerRequest: 1,
          enableOfflineQueue: true,
        });
        const keys = [...this.ids.keys()];
        const reply = (await this.blocker.xread(
          'COUNT',
          1,
          'BLOCK',
          Math.max(1, ms - since),
          'STREAMS',
          ...keys,
          ...keys.map(k => this.ids.get(k)!),
        )) as Array<[string, Array<[string, string[]]>]> | null;
        for (const [key, entries] of reply ?? []) {
          const id = entries.at(-1)?.[0];
          if (id) this.ids.set(key, id);
        }
        const gap = minGapMs - (Date.now() - this.last);
        if (gap > 0) await sleep(gap, undefined, { signal: this.signal }).catch(() => undefined);
        this.last = Date.now();
        return;
      } catch {
        // An aborted wait (close), an old server, a dropped connection: plain ticks from now.
        this.broken = true;
        this.close();
      }
    }
    await sleep(Math.max(0, ms - (Date.now() - this.last)), undefined, {
      signal: this.signal,
    }).catch(() => undefined);
    this.last = Date.now();
  }

  close(): void {
    this.blocker?.disconnect();
    this.blocker = undefined;
  }
}

/** The part jobs' fields for each upload's pending children, in one pipelined round trip. */
async function readPartRows(
  redis: Redis,
  deps: Map<TrackedJob, string[]>,
): Promise<Map<TrackedJob, Array<[string, Array<string | null>]>>> {
  const out = new Map<TrackedJob, Array<[string, Array<string | null>]>>();
  const asked: Array<[TrackedJob, string]> = [];
  const pipe = redis.pipeline();
  for (const [j, keys] of deps) {
    for (const key of keys) {
      if (!parsePartJobId(key)) continue;
      asked.push([j, key]);
      pipe.hmget(key, ...PART_FIELDS);
    }
  }
  if (asked.length === 0) return out;
  const replies = (await pipe.exec()) ?? [];
  for (const [i, [j, key]] of asked.entries()) {
    const [err, values] = replies[i] ?? [];
    if (err) continue;
    const rows = out.get(j) ?? [];
    rows.push([key, (values ?? []) as Array<string | null>]);
    out.set(j, rows);
  }
  return out;
}

async function readOutcome(j: TrackedJob): Promise<FollowOutcome | undefined> {
  const state = await j.queue.getJobState(j.jobId);
  const job = await j.queue.getJob(j.jobId);
  if (!job) return undefined;
  const durationMs =
    job.finishedOn && job.processedOn ? job.finishedOn - job.processedOn : undefined;
  const data = (job.data ?? {}) as {
    startedAt?: unknown;
    ifExists?: unknown;
    tracked?: unknown;
    /** A sync's options: its --if-exists (skip when not given). */
    options?: { ifExists?: unknown };
    direction?: unknown;
  };
  const since = data.startedAt;
  const total = typeof since === 'number' && job.finishedOn ? job.finishedOn - since : durationMs;
  const ifExists =
    typeof data.ifExists === 'string'
      ? data.ifExists
      : data.direction === 'up'
        ? typeof data.options?.ifExists === 'string'
          ? data.options.ifExists
          : 'skip'
        : undefined;
  const context = {
    ...(ifExists !== undefined ? { ifExists } : {}),
    ...(Array.isArray(data.tracked)
      ? {
          children: (data.tracked as Array<Record<string, unknown>>).map(t => ({
            queue: String(t['queue'] ?? ''),
            jobId: String(t['jobId'] ?? ''),
            fileName: String(t['fileName'] ?? ''),
          })),
        }
      : {}),
  };
  if (state === 'completed')
    return { job: j, state: 'completed', result: job.returnvalue, durationMs: total, ...context };
  if (state === 'failed') {
    const reason = job.failedReason || 'failed without a reason';
    return {
      job: j,
      state: 'failed',
      reason,
      code: reasonCode(reason),
      durationMs: total,
      ...context,
    };
  }
  return undefined;
}
