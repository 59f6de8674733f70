/**
 * The `upload` processor: a step job whose data is a union keyed by `step`
 * (shared/queues/jobs.ts UploadJobData), run by the step machine (worker/step-machine.ts):
 *   prepare -> stage -> (complete, s3 multipart only) -> finalize.
 * Each step returns the next checkpoint and the machine persists it, so a retry, a
 * stalled-job takeover or a wake-up after the part children finish continues where the
 * last checkpoint left off. When the job fails for good (worker/failure-policy.ts decides),
 * what it started is cleaned up: the children still waiting are removed, and a package
 * record it created without its file is deleted. The multipart upload is aborted, except
 * at `complete`, where it is kept for a retry to resume (`keepForRetry`).
 */
import type { Queue } from 'bullmq';
import type { Logger } from '../../../shared/logger.ts';
import type { UploadAt, UploadJobData, UploadResult } from '../../../shared/queues/jobs.ts';
import { defineProcessor, type Run } from '../../failure-policy.ts';
import type { FitnessHook } from '../../fitness.ts';
import { unlessLockLost, type LockFences } from '../../fence.ts';
import { runSteps, type Steps } from '../../step-machine.ts';
import { abortMultipart } from './abort.ts';
import { complete, markForResume } from './complete.ts';
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

/**
 * A failure for good at `complete` (a part that failed for good, S3 or Jamf away for longer
 * than the attempts last) keeps what a retry resumes from: the open multipart upload with
 * the parts S3 holds, their ETags (the job's `processed` children) and the hash job. The
 * children still waiting are removed (nothing goes on being sent for a failed job) and the
 * credentials dropped (a retry renews them). Not when the file changed: the parts S3 holds
 * are of another file. An upload that is never retried leaves its multipart upload open in
 * the JCDS bucket (each JCDS upload has a key of its own, so a later upload of the same
 * file does not find it as a stray); the README says so under "Operations".
 */
function keepsForRetry(d: UploadJobData, reason: string): boolean {
  return d.step === 'complete' && reason !== 'FILE_CHANGED';
}

async function keepForRetry(deps: UploadDeps, job: UploadJob, d: UploadAt<'complete'>, run: Run) {
  await run.lock.check('remove the part jobs still waiting');
  await job.removeUnprocessedChildren().catch(() => undefined);
  deps.engine.release(d.multipart);
  await unlessLockLost(deps.vault.delete(d.multipart.vaultKey, run.lock));
  await job.log(
    `multipart upload kept for a retry: \`jcds retry ${String(job.id)}\` or Retry in the dashboard sends only the parts not done`,
  );
}

/**
 * Undoes what a failed upload started, so nothing is left half-done (but what a retry
 * resumes). Every step of it is fenced by the job's lock (worker/fence.ts): it runs for the
 * worker that holds the lock, never for one that lost it.
 */
async function cleanup(deps: UploadDeps, job: UploadJob, reason: string, run: Run) {
  const { log } = run;
  let d = job.data;
  const stored = d.step === 'finalize';
  const keep = keepsForRetry(d, reason);
  if ('multipart' in d && d.multipart) {
    if (keep) await keepForRetry(deps, job, d as UploadAt<'complete'>, run);
    else {
      if (!stored) await abortMultipart(deps, job, d.multipart, reason, run);
      // The hash job is not a child: remove it unless it already runs (then it just finishes).
      await run.lock.check('remove the hash job');
      await deps.parts.removeHash(String(job.id));
    }
  }
  // A record this job created is deleted again: Jamf never verified the file it points at.
  if (d.step !== 'prepare' && d.packageCreated && d.packageId) {
    const { packageId } = d;
    // Checked right before: a record the new owner may have adopted is never deleted by a
    // worker that lost the lock (the window: fence.ts).
    await run.lock.check(`delete package ${packageId}`);
    const deleted = await deps.jamf.deletePackage(packageId).then(
      async () => {
        await job.log(`package ${packageId} (created by this job, never verified) deleted`);
        return true;
      },
      (err: unknown) => {
        log.warn({ err, packageId }, 'could not delete the package record after a failed upload');
        return false;
      },
    );
    if (deleted) {
      d = { ...d };
      delete d.packageId;
      delete d.packageCreated;
    }
  }
  if (keep) await run.lock.saveData(markForResume(d as UploadAt<'complete'>));
}

export function uploadProcessor(
  deps: UploadDeps & { logger: Logger; fences: LockFences; fitness?: FitnessHook },
  queue: Queue,
) {
  return defineProcessor<UploadJobData, UploadResult>(
    {
      queue: 'upload',
      rateLimit: queue,
      logFields: job => ({ fileName: job.data.fileName }),
      failureFields: job => ({ step: job.data.step }),
      run: (job: UploadJob, run: Run) =>
        runSteps(uploadSteps({ deps, job, run }), job.data, {
          // The one checkpoint writer, fenced by the job's lock (worker/fence.ts).
          persist: data => run.lock.saveData(data),
        }),
      cleanup: (job, reason, run) => cleanup(deps, job, reason, run),
    },
    deps,
  );
}
