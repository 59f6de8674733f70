/**
 * The jobs a sync enqueued, followed to their end. The sync job keeps the list (job id,
 * file name, outcome once known) in its own data, so whichever worker wakes it next
 * continues where the last one left off, and the outcome of a job is recorded as soon as
 * it is seen (before BullMQ's removeOnComplete may delete the job).
 */
import { Job, type JobsOptions, type Queue } from 'bullmq';
import type {
  DownloadResult,
  SyncJobData,
  SyncResult,
  SyncTrackedJob,
  UploadResult,
} from '../../shared/queues/jobs.ts';
import { downloadJobName, uploadJobName } from '../../shared/queues/names.ts';
import type { PlannedJob } from './sync-up.ts';

const BULK = 500;

/** Enqueues the planned jobs in bulk; a deduplicated add tracks the job already in flight. */
export async function enqueuePlanned(
  queueOf: (name: string) => Queue,
  jobs: readonly PlannedJob[],
): Promise<SyncTrackedJob[]> {
  const tracked: SyncTrackedJob[] = [];
  for (const queueName of ['upload', 'download'] as const) {
    const mine = jobs.filter(j => j.queue === queueName);
    const queue = queueOf(queueName);
    for (let i = 0; i < mine.length; i += BULK) {
      const slice = mine.slice(i, i + BULK);
      const added = await queue.addBulk(
        slice.map(j => ({
          name: queueName === 'upload' ? uploadJobName(j.fileName) : downloadJobName(j.fileName),
          data: j.data,
          opts: j.opts as JobsOptions,
        })),
      );
      for (const [k, job] of added.entries())
        tracked.push({ jobId: String(job.id), fileName: slice[k]!.fileName, queue: queueName });
    }
  }
  return tracked;
}

/** Reads the state of every job whose outcome is not known yet. Returns true if any changed. */
export async function pollTracked(
  queueOf: (name: string) => Queue,
  tracked: SyncTrackedJob[],
): Promise<boolean> {
  const open = tracked.filter(t => t.state === undefined);
  const updates = await Promise.all(
    open.map(async t => {
      const queue = queueOf(t.queue);
      const job = await Job.fromId(queue, t.jobId);
      if (!job)
        return {
          t,
          state: 'failed' as const,
          reason: `job ${t.jobId} was removed before its outcome was read`,
        };
      const state = await job.getState();
      if (state === 'completed') {
        const rv = job.returnvalue as UploadResult | DownloadResult | null;
        const outcome =
          rv && 'outcome' in rv
            ? rv.outcome
            : rv && 'alreadyPresent' in rv && rv.alreadyPresent
              ? 'unchanged'
              : t.queue === 'download'
                ? 'downloaded'
                : 'done';
        return { t, state, outcome };
      }
      if (state === 'failed')
        return { t, state, reason: job.failedReason || 'failed (no reason recorded)' };
      return undefined;
    }),
  );
  let changed = false;
  for (const u of updates) {
    if (!u) continue;
    changed = true;
    u.t.state = u.state;
    if ('outcome' in u) u.t.outcome = u.outcome;
    if ('reason' in u && u.reason !== undefined) u.t.reason = u.reason;
  }
  return changed;
}

export function emptyResult(data: SyncJobData, durationMs: number): SyncResult {
  return {
    direction: data.direction,
    dir: data.dir,
    uploaded: 0,
    downloaded: 0,
    unchanged: 0,
    failed: 0,
    failures: [],
    jobs: [],
    considered: 0,
    hashesComputed: 0,
    hashCacheHits: 0,
    bytesHashed: 0,
    durationMs,
    ...(data.schedule ? { schedule: data.schedule } : {}),
  };
}

/** The summary of a finished sync. */
export function summarize(data: SyncJobData, durationMs: number): SyncResult {
  const counts = data.counts ?? {
    considered: 0,
    unchanged: 0,
    failures: [],
    hashesComputed: 0,
    hashCacheHits: 0,
    bytesHashed: 0,
  };
  const tracked = data.tracked ?? [];
  const done = tracked.filter(t => t.state === 'completed');
  const failed = tracked.filter(t => t.state === 'failed');
  const failures = [
    ...counts.failures,
    ...failed.map(t => ({ fileName: t.fileName, reason: t.reason ?? 'failed' })),
  ];
  return {
    ...emptyResult(data, durationMs),
    uploaded: done.filter(t => t.queue === 'upload' && t.outcome !== 'unchanged').length,
    downloaded: done.filter(t => t.queue === 'download' && t.outcome !== 'unchanged').length,
    unchanged: counts.unchanged + done.filter(t => t.outcome === 'unchanged').length,
    failed: failures.length,
    failures,
    jobs: tracked.map(t => t.jobId),
    considered: counts.considered,
    hashesComputed: counts.hashesComputed,
    hashCacheHits: counts.hashCacheHits,
    bytesHashed: counts.bytesHashed,
  };
}
