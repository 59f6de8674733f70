/**
 * Queue names and the key prefix. Every queue shares the `{jcds}` hash tag so that a
 * parent upload and its part children live in one Redis Cluster slot (BullMQ flows
 * across queues need that; bullmq #2589).
 */
export const QUEUE_PREFIX = '{jcds}';

export const QUEUES = {
  upload: 'upload',
  uploadPart: 'upload-part',
  download: 'download',
  sync: 'sync',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export const ALL_QUEUES: QueueName[] = Object.values(QUEUES);

/**
 * The deduplication id of an upload: one in-flight upload per JCDS file name, whoever
 * enqueues it (a producer, or a sync job in a worker).
 */
export function uploadDedupId(fileName: string): string {
  return `upload:${fileName}`;
}

/**
 * The id of an upload's hash job in the part queue (a job beside the parts, not a child:
 * worker/processors/upload-s3.ts); the parts are `<uploadJobId>-p<N>`.
 */
export function hashJobId(uploadJobId: string): string {
  return `${uploadJobId}-hash`;
}

/** The job states worth counting (BullMQ v6 has no `paused` state). */
export const COUNT_STATES = [
  'waiting',
  'prioritized',
  'active',
  'waiting-children',
  'delayed',
  'completed',
  'failed',
] as const;
