/**
 * What `jcds status` reads: job counts of every queue, the most recent jobs of the upload,
 * download and sync queues, and one job with its part children. Plain objects, the same
 * for the table and for --json.
 */
import type { Job, JobType, Queue } from 'bullmq';
import { AppError } from '../../shared/errors.ts';
import { openQueue } from '../../shared/queues/factory.ts';
import {
  ALL_QUEUES,
  COUNT_STATES,
  hashJobId,
  parsePartJobId,
  QUEUES,
} from '../../shared/queues/names.ts';
import type { Producer } from '../producer.ts';
import { reasonCode, normalizeProgress } from './follow.ts';

export { COUNT_STATES };

export interface JobSummary {
  queue: string;
  jobId: string;
  name: string;
  /** fileName (upload, download, part), or the folder (sync). */
  label: string;
  state: string;
  size: number | null;
  bytesDone: number | null;
  phase: string | null;
  /** Bytes per second: the average while it ran (finished) or since it started (active). */
  speed: number | null;
  attemptsMade: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
  code: string | null;
  result: unknown;
}

export interface PartSummary {
  jobId: string;
  name: string;
  partNumber: number | null;
  state: string;
  size: number | null;
  etag: string | null;
  attemptsMade: number | null;
  error: string | null;
}

/** All four queues on the producer's connection (upload-part is read-only here). */
export function statusQueues(producer: Producer): Record<string, Queue> {
  return {
    [QUEUES.upload]: producer.queues.upload,
    [QUEUES.uploadPart]: openQueue(QUEUES.uploadPart, producer.connection),
    [QUEUES.download]: producer.queues.download,
    [QUEUES.sync]: producer.queues.sync,
  };
}

export async function queueCounts(
  queues: Record<string, Queue>,
): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const name of ALL_QUEUES) {
    out[name] = await queues[name]!.getJobCounts(...COUNT_STATES);
  }
  return out;
}

const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};

export function summarize(queue: string, job: Job, state: string, now = Date.now()): JobSummary {
  const data = obj(job.data);
  const size = typeof data['size'] === 'number' ? data['size'] : null;
  const p = normalizeProgress(job.progress, size ?? undefined);
  const result = obj(job.returnvalue);
  const resultSize = typeof result['size'] === 'number' ? result['size'] : undefined;
  const startedAt =
    typeof data['startedAt'] === 'number' ? data['startedAt'] : (job.processedOn ?? null);
  let speed: number | null = null;
  if (result['outcome'] === 'unchanged') {
    // Skipped: Jamf already held these bytes, nothing was sent.
    speed = null;
  } else if (state === 'completed' && resultSize !== undefined && job.finishedOn && startedAt) {
    speed = (resultSize * 1000) / Math.max(1, job.finishedOn - startedAt);
  } else if (p.done !== undefined && startedAt && state !== 'failed') {
    speed = (p.done * 1000) / Math.max(1, now - startedAt);
  }
  if (queue === QUEUES.sync) {
    // A sync's progress counts the jobs it started, not bytes.
    const r = obj(job.progress);
    const jobsText =
      typeof r['done'] === 'number' && typeof r['total'] === 'number'
        ? `${r['done']}/${r['total']} jobs`
        : null;
    p.done = undefined;
    p.phase = jobsText ?? undefined;
    speed = null;
  }
  const error = state === 'failed' || job.failedReason ? job.failedReason || null : null;
  const label =
    typeof data['fileName'] === 'string'
      ? data['fileName']
      : typeof data['dir'] === 'string'
        ? data['dir']
        : job.name;
  return {
    queue,
    jobId: String(job.id),
    name: job.name,
    label,
    state,
    size: size ?? resultSize ?? null,
    bytesDone: state === 'completed' ? (resultSize ?? p.done ?? null) : (p.done ?? null),
    phase: p.phase ?? null,
    speed: speed === null ? null : Math.round(speed),
    attemptsMade: job.attemptsMade,
    createdAt: job.timestamp,
    startedAt,
    finishedAt: job.finishedOn ?? null,
    error,
    code: error ? (reasonCode(error) ?? null) : null,
    result: job.returnvalue ?? null,
  };
}

/** The `limit` most recent jobs of the upload, download and sync queues. */
export async function recentJobs(queues: Record<string, Queue>, limit = 20): Promise<JobSummary[]> {
  const out: JobSummary[] = [];
  for (const name of [QUEUES.upload, QUEUES.download, QUEUES.sync]) {
    const q = queues[name]!;
    for (const state of COUNT_STATES) {
      const jobs = await q.getJobs([state as JobType], 0, limit - 1, false);
      for (const job of jobs) if (job) out.push(summarize(name, job, state));
    }
  }
  out.sort(
    (a, b) =>
      (b.finishedAt ?? b.startedAt ?? b.createdAt) - (a.finishedAt ?? a.startedAt ?? a.createdAt),
  );
  return out.slice(0, limit);
}

/** `upload:12` or `12` (then searched in upload, download, sync, upload-part). */
export async function findJob(
  queues: Record<string, Queue>,
  ref: string,
): Promise<{ queue: string; job: Job; others: string[] }> {
  const m = /^(upload|upload-part|download|sync):(.+)$/.exec(ref);
  const order = m ? [m[1]!] : [QUEUES.upload, QUEUES.download, QUEUES.sync, QUEUES.uploadPart];
  const id = m ? m[2]! : ref;
  const found: Array<{ queue: string; job: Job }> = [];
  for (const name of order) {
    const job = await queues[name]!.getJob(id);
    if (job) found.push({ queue: name, job });
  }
  const first = found[0];
  if (!first) {
    throw new AppError(
      'JOB_NOT_FOUND',
      `No job ${JSON.stringify(ref)} in ${order.join(', ')}: check the id (jcds status lists recent jobs; finished jobs are removed after a while).`,
    );
  }
  return { ...first, others: found.slice(1).map(f => `${f.queue}:${id}`) };
}

/** The part children of an upload, in part order, and its hash job last. */
export async function partsOf(queues: Record<string, Queue>, job: Job): Promise<PartSummary[]> {
  const deps = await job.getDependencies();
  const parts = new Map<string, PartSummary>();
  const idOf = (key: string): string => key.slice(key.lastIndexOf(':') + 1);
  const base = (key: string): PartSummary => {
    const id = idOf(key);
    const part = parsePartJobId(id);
    return {
      jobId: id,
      name: part ? 'part' : id === hashJobId(String(job.id)) ? 'hash' : 'child',
      partNumber: part ? part.partNumber : null,
      state: 'unknown',
      size: null,
      etag: null,
      attemptsMade: null,
      error: null,
    };
  };
  for (const [key, value] of Object.entries(deps.processed ?? {})) {
    const r = obj(typeof value === 'string' ? safeJson(value) : value);
    parts.set(key, {
      ...base(key),
      state: 'completed',
      size: typeof r['size'] === 'number' ? r['size'] : null,
      etag: typeof r['etag'] === 'string' ? r['etag'] : null,
    });
  }
  const live = [
    ...(deps.unprocessed ?? []),
    ...(deps.failed ?? []),
    ...Object.keys(deps.ignored ?? {}),
  ];
  const partQueue = queues[QUEUES.uploadPart]!;
  for (const key of live) {
    const s = base(key);
    const child = await partQueue.getJob(s.jobId);
    if (child) {
      s.state = await child.getState();
      s.size =
        typeof obj(child.data)['length'] === 'number'
          ? (obj(child.data)['length'] as number)
          : null;
      s.attemptsMade = child.attemptsMade;
      s.error = child.failedReason || null;
    } else s.state = (deps.failed ?? []).includes(key) ? 'failed' : 'removed';
    parts.set(key, s);
  }
  // The hash job runs beside the parts but is not a child (the object is completed without
  // waiting for it); it exists only for multipart uploads. (Uploads enqueued before that
  // change have it as a child, listed above.)
  const hashId = hashJobId(String(job.id));
  const hash = [...parts.values()].some(p => p.jobId === hashId)
    ? undefined
    : await partQueue.getJob(hashId);
  if (hash) {
    parts.set(hashId, {
      jobId: hashId,
      name: 'hash',
      partNumber: null,
      state: await hash.getState(),
      size: null,
      etag: null,
      attemptsMade: hash.attemptsMade,
      error: hash.failedReason || null,
    });
  }
  return [...parts.values()].sort((a, b) => (a.partNumber ?? 1e9) - (b.partNumber ?? 1e9));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
