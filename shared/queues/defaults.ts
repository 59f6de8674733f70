/**
 * Default job options per queue. Finished jobs are removed by age and count so that
 * Redis memory stays bounded (bullmq #2890); part children's return values survive
 * their removal in the parent's `processed` hash.
 */
import type { JobsOptions } from 'bullmq';
import type { QueueName } from './names.ts';

const HOUR = 3600;
const DAY = 24 * HOUR;

/** Uploads and downloads (one file each): the same retries and retention. */
export const TRANSFER_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000, jitter: 0.3 },
  removeOnComplete: { age: 7 * DAY, count: 2_000 },
  removeOnFail: { age: 14 * DAY, count: 5_000 },
  keepLogs: 100,
};

/** The upload queue's options (TRANSFER_JOB_OPTIONS; the soak test reads its retention). */
export const UPLOAD_JOB_OPTIONS: JobsOptions = TRANSFER_JOB_OPTIONS;

export const PART_JOB_OPTIONS: JobsOptions = {
  attempts: 6,
  backoff: { type: 'exponential', delay: 1_000, jitter: 0.3 },
  removeOnComplete: { age: HOUR, count: 5_000 },
  removeOnFail: { age: 7 * DAY, count: 5_000 },
  keepLogs: 20,
};

export const SYNC_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5_000 },
  removeOnComplete: { age: 30 * DAY, count: 500 },
  removeOnFail: { age: 30 * DAY, count: 500 },
  keepLogs: 200,
};

/** Redis stream of queue events, trimmed. */
export const EVENTS_MAX_LEN = 10_000;

/**
 * Each queue's default job options, applied by openQueue (shared/queues/factory.ts) to
 * every Queue it builds: a job added without options (by a sync in a worker, or from the
 * dashboard) gets the same retries and retention as one the producer adds.
 */
export const JOB_OPTIONS: Record<QueueName, JobsOptions> = {
  upload: TRANSFER_JOB_OPTIONS,
  download: TRANSFER_JOB_OPTIONS,
  'upload-part': PART_JOB_OPTIONS,
  sync: SYNC_JOB_OPTIONS,
};
