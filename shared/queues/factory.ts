/**
 * The one place a BullMQ Queue is built: every queue lives under QUEUE_PREFIX (the
 * `{jcds}` hash tag, so a flow's parent and children share a Redis Cluster slot).
 */
import { createRequire } from 'node:module';
import type { ConnectionOptions, Queue as BullQueue, QueueOptions } from 'bullmq';
import { JOB_OPTIONS } from './defaults.ts';
import { QUEUE_PREFIX, type QueueName } from './names.ts';

// The Queue class alone: BullMQ's index also loads the Worker, FlowProducer and sandbox code,
// which a producer (`jcds upload` enqueuing) does not use: about 60 ms less CPU at its start
// (issue 14, "CLI start"). The same file that the index requires (one module instance per
// process); bullmq's version is pinned in package.json.
const { Queue } = createRequire(import.meta.url)('bullmq/dist/cjs/classes/queue.js') as {
  Queue: typeof BullQueue;
};

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
): BullQueue {
  return new Queue(name, {
    defaultJobOptions: JOB_OPTIONS[name],
    ...options,
    connection,
    prefix: QUEUE_PREFIX,
  });
}
