/** The `upload-part` processor: dispatches `part` and `hash` jobs, maps their errors. */
import type { Job, Queue } from 'bullmq';
import { errorCode } from '../../shared/errors.ts';
import type { HashJobData, HashResult, PartJobData, PartResult } from '../../shared/queues/jobs.ts';
import type { WorkerContext } from '../context.ts';
import { isControlFlow, isPermanent, isThrottle, toBullError } from '../error-mapping.ts';
import { processHash, processPart } from './upload-part.ts';

export function partProcessor(ctx: WorkerContext, queue: Queue) {
  return async (
    job: Job<PartJobData | HashJobData, PartResult | HashResult>,
    _token?: string,
    signal?: AbortSignal,
  ) => {
    try {
      if (job.name === 'hash')
        return await processHash(job as Job<HashJobData, HashResult>, signal);
      return await processPart(ctx, job as Job<PartJobData, PartResult>, signal);
    } catch (err) {
      if (isControlFlow(err)) throw err;
      if (!isThrottle(err)) {
        if (isPermanent(err)) ctx.metrics.failure('upload-part', errorCode(err) ?? 'ERROR');
        else ctx.metrics.retry('upload-part');
      }
      ctx.logger.warn(
        { err, jobId: job.id, part: (job.data as PartJobData).partNumber },
        'part failed',
      );
      throw await toBullError(err, queue, 2_000);
    }
  };
}
