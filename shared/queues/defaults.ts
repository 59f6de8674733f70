/**
 * Default job options per queue. Finished jobs are removed by age and count so that
 * Redis memory stays bounded (bullmq #2890); part children's return values survive
 * their removal in the parent's `processed` hash.
 */
import type { JobsOptions } from 'bullmq';

const HOUR = 3600;
const DAY = 24 * HOUR;

export const UPLOAD_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000, jitter: 0.3 },
  removeOnComplete: { age: 7 * DAY, count: 2_000 },
  removeOnFail: { age: 14 * DAY, count: 5_000 },
  keepLogs: 100,
};

export const PART_JOB_OPTIONS: JobsOptions = {
  attempts: 6,
  backoff: { type: 'exponential', delay: 1_000, jitter: 0.3 },
  removeOnComplete: { age: HOUR, count: 5_000 },
  removeOnFail: { age: 7 * DAY, count: 5_000 },
  keepLogs: 20,
};

export const DOWNLOAD_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000, jitter: 0.3 },
  removeOnComplete: { age: 7 * DAY, count: 2_000 },
  removeOnFail: { age: 14 * DAY, count: 5_000 },
  keepLogs: 100,
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
