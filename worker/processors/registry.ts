/**
 * Processors for the queues beyond upload and upload-part (download, sync): each module
 * adds its entry here, so worker/start.ts stays the one place that builds Workers.
 */
import type { Processor, Queue, WorkerOptions } from 'bullmq';
import { QUEUES, type QueueName } from '../../shared/queues/names.ts';
import type { WorkerContext } from '../context.ts';
import { downloadProcessor } from './download.ts';
import { syncProcessor } from './sync.ts';

export interface ProcessorEntry {
  name: QueueName;
  processor: Processor;
  opts?: Partial<WorkerOptions>;
}

export function extraProcessors(
  ctx: WorkerContext,
  queue: (name: string) => Queue,
): ProcessorEntry[] {
  return [
    {
      name: QUEUES.download,
      processor: downloadProcessor(ctx, queue(QUEUES.download)) as Processor,
    },
    // A sync job is short-lived per wake-up (it waits for its jobs in the delayed set).
    { name: QUEUES.sync, processor: syncProcessor(ctx, queue) as Processor },
  ];
}
