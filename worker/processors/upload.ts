/**
 * The `upload` processor: a step job (BullMQ "process step jobs" pattern) whose step is
 * kept in its data, so a retry, a stalled-job takeover or a wake-up after the part
 * children finish continues where the last checkpoint left off:
 *   prepare -> stage -> (complete, s3 multipart only) -> finalize.
 * When the job fails for good (an unrecoverable error, or the last attempt), what it
 * started is cleaned up: the multipart upload is aborted and the children still waiting
 * removed, and a package record it created without its file is deleted.
 */
import type { Queue } from 'bullmq';
import { errorCode } from '../../shared/errors.ts';
import type { UploadJobData, UploadResult } from '../../shared/queues/jobs.ts';
import type { WorkerContext } from '../context.ts';
import { isControlFlow, isPermanent, isThrottle, toBullError } from '../error-mapping.ts';
import { finalize } from './upload-finalize.ts';
import type { StepArgs, UploadJob } from './upload-job.ts';
import { stagePackageUpload } from './upload-package.ts';
import { prepare } from './upload-prepare.ts';
import { hashJobId } from '../../shared/queues/names.ts';
import { abortMultipart, completeS3, stageS3 } from './upload-s3.ts';

async function runSteps(args: StepArgs): Promise<UploadResult> {
  const { job } = args;
  for (;;) {
    switch (job.data.step) {
      case 'prepare': {
        const skipped = await prepare(args);
        if (skipped) return skipped;
        break;
      }
      case 'stage':
        if (job.data.chosenTransport === 'package-upload') await stagePackageUpload(args);
        else await stageS3(args);
        break;
      case 'complete':
        await completeS3(args);
        break;
      case 'finalize':
        return finalize(args);
    }
  }
}

/** Undoes what a failed upload started, so nothing is left half-done. */
async function cleanup(ctx: WorkerContext, job: UploadJob, reason: string): Promise<void> {
  const d = job.data;
  if (d.multipart && !d.stored) await abortMultipart(ctx, job, reason);
  // The hash job is not a child: remove it unless it already runs (then it just finishes).
  if (d.multipart) await ctx.partQueue.remove(hashJobId(String(job.id))).catch(() => undefined);
  if (d.packageCreated && d.packageId && !d.stored) {
    await ctx.jamf.deletePackage(d.packageId).then(
      () => job.log(`package ${d.packageId} (created by this job, without its file) deleted`),
      err =>
        ctx.logger.warn(
          { err, packageId: d.packageId },
          'could not delete the package record after a failed upload',
        ),
    );
  }
}

export function uploadProcessor(ctx: WorkerContext, queue: Queue) {
  return async (job: UploadJob, token?: string, signal?: AbortSignal): Promise<UploadResult> => {
    const log = ctx.logger.child({
      queue: 'upload',
      jobId: job.id,
      fileName: job.data.fileName,
      attempt: job.attemptsMade + 1,
    });
    try {
      return await runSteps({ ctx, job, token, log, signal });
    } catch (err) {
      if (isControlFlow(err)) throw err;
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const final = !isThrottle(err) && (isPermanent(err) || lastAttempt) && !signal?.aborted;
      log.warn({ err, final, step: job.data.step }, 'upload step failed');
      if (final) {
        ctx.metrics.failure('upload', errorCode(err) ?? 'ERROR');
        await cleanup(ctx, job, errorCode(err) ?? 'failed').catch(e =>
          log.error({ err: e }, 'cleanup failed'),
        );
      } else ctx.metrics.retry('upload');
      throw await toBullError(err, queue);
    }
  };
}

export type { UploadJobData };
