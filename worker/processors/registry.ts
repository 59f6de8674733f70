/**
 * Processors for the queues beyond upload and upload-part (download, sync): each module
 * adds its entry here, so worker/start.ts stays the one place that builds Workers.
 */
import type { Processor, Queue, WorkerOptions } from 'bullmq';
import type { QueueName } from '../../shared/queues/names.ts';
import type { WorkerContext } from '../context.ts';

export interface ProcessorEntry {
  name: QueueName;
  processor: Processor;
  opts?: Partial<WorkerOptions>;
}

export function extraProcessors(_ctx: WorkerContext, _queue: (name: string) => Queue): ProcessorEntry[] {
  return [];
}
