/**
 * The one place a BullMQ Queue is built: every queue lives under QUEUE_PREFIX (the
 * `{jcds}` hash tag, so a flow's parent and children share a Redis Cluster slot).
 */
import { Queue, type ConnectionOptions, type QueueOptions } from 'bullmq';
import { JOB_OPTIONS } from './defaults.ts';
import { QUEUE_PREFIX, type QueueName } from './names.ts';

/** Options a caller may add; the connection and the prefix are the factory's. */
export type OpenQueueOptions = Omit<QueueOptions, 'connection' | 'prefix'>;

/**
 * A Queue named `name` under QUEUE_PREFIX on `connection` (an ioredis client or options),
 * with the queue's default job options (JOB_OPTIONS) unless `options` gives others.
 */
export function openQueue(
  name: QueueName,
  connection: ConnectionOptions,
  options: OpenQueueOptions = {},
): Queue {
  return new Queue(name, {
    defaultJobOptions: JOB_OPTIONS[name],
    ...options,
    connection,
    prefix: QUEUE_PREFIX,
  });
}
