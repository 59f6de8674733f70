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
