/**
 * The `upload` processor: a step job whose data is a union keyed by `step`
 * (shared/queues/jobs.ts UploadJobData), run by the step machine (worker/step-machine.ts):
 *   prepare -> stage -> (complete, s3 multipart only) -> finalize.
 * Each step returns the next checkpoint and the machine persists it, so a retry, a
 * stalled-job takeover or a wake-up after the part children finish continues where the
 * last checkpoint left off. When the job fails for good (worker/failure-policy.ts decides),
 * what it started is cleaned up: the multipart upload is aborted and the children still
 * waiting removed, and a package record it created without its file is deleted.
 */
import type { Queue } from 'bullmq';
import type { Logger } from '../../../shared/logger.ts';
import type { UploadJobData, UploadResult } from '../../../shared/queues/jobs.ts';
import { defineProcessor, type Run } from '../../failure-policy.ts';
import { runSteps, type Steps } from '../../step-machine.ts';
import { abortMultipart } from './abort.ts';
import { complete } from './complete.ts';
import { finalize } from './finalize.ts';
import type { StepArgs, UploadDeps, UploadJob } from './job.ts';
import { prepare } from './prepare.ts';
import { stageS3 } from './stage-s3.ts';
import { stagePackageUpload } from './stage-package.ts';

function uploadSteps(base: Omit<StepArgs, 'save'>): Steps<UploadJobData, UploadResult> {
  return {
    prepare: (d, ctx) => prepare({ ...base, save: ctx.save }, d),
    stage: (d, ctx) =>
      d.chosenTransport === 'package-upload'
        ? stagePackageUpload({ ...base, save: ctx.save }, d)
        : stageS3({ ...base, save: ctx.save }, d),
    complete: (d, ctx) => complete({ ...base, save: ctx.save }, d),
    finalize: (d, ctx) => finalize({ ...base, save: ctx.save }, d),
  };
}

/** Undoes what a failed upload started, so nothing is left half-done. */
async function cleanup(deps: UploadDeps, job: UploadJob, reason: string, log: Logger) {
  const d = job.data;
  const stored = d.step === 'finalize';
  if ('multipart' in d && d.multipart) {
    if (!stored) await abortMultipart(deps, job, d.multipart, reason, log);
    // The hash job is not a child: remove it unless it already runs (then it just finishes).
    await deps.parts.removeHash(String(job.id));
  }
  // A record this job created is deleted again: Jamf never verified the file it points at.
  if (d.step !== 'prepare' && d.packageCreated && d.packageId) {
    const { packageId } = d;
    await deps.jamf.deletePackage(packageId).then(
      () => job.log(`package ${packageId} (created by this job, never verified) deleted`),
      (err: unknown) =>
        log.warn({ err, packageId }, 'could not delete the package record after a failed upload'),
    );
  }
}

export function uploadProcessor(deps: UploadDeps & { logger: Logger }, queue: Queue) {
  return defineProcessor<UploadJobData, UploadResult>(
    {
      queue: 'upload',
      rateLimit: queue,
      logFields: job => ({ fileName: job.data.fileName }),
      failureFields: job => ({ step: job.data.step }),
      run: (job: UploadJob, run: Run) =>
        runSteps(uploadSteps({ deps, job, run }), job.data, {
          persist: async data => {
            await job.updateData(data);
          },
        }),
      cleanup: (job, reason, run) => cleanup(deps, job, reason, run.log),
    },
    deps,
  );
}
