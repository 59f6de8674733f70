/**
 * Step 3, complete (s3 multipart only): adds the hash job and any part child not yet done
 * (deterministic job ids make a re-add a no-op), waits for the parts
 * (moveToWaitingChildren), then completes the multipart upload from the children's ETags
 * and CRC32s (shared/upload/multipart.ts: cross-checked with ListParts, confirmed with
 * HeadObject after NoSuchUpload; a checkpoint of an earlier version, whose upload was
 * created without a checksum algorithm, completes with ETags only). A child that failed for good wakes this job
 * (continueParentOnFailure): it fails with the part's reason.
 *
 * A retry resumes. A failure for good at this step keeps the multipart upload, the parts
 * S3 holds and their ETags (index.ts `cleanup`) and marks the checkpoint `resume`. BullMQ's
 * retry (the dashboard's Retry, `jcds retry`) moves only this job back to wait: the child
 * failure stays recorded in its `failed` hash and the child stays failed. So the run after
 * a retry first takes those failures back (shared/upload/part-queue.ts
 * `takeBackFailures`: each failed child is retried with fresh attempts, which puts it back
 * into this job's dependencies), adds the parts not done, and waits for them: only the
 * missing parts are sent again.
 */
import { UnrecoverableError, WaitingChildrenError } from 'bullmq';
import { AppError, errorCode, formatReason, parseReason } from '../../../shared/errors.ts';
import { assertUnchanged } from '../../../shared/files.ts';
import type { UploadAt, UploadJobData, UploadResult } from '../../../shared/queues/jobs.ts';
import { openUpload } from '../../../shared/upload/multipart.ts';
import { firstFailedChild, partsDone } from '../../../shared/upload/part-queue.ts';
import { unlessLockLost } from '../../fence.ts';
import type { StepOutcome } from '../../step-machine.ts';
import { abortMultipart } from './abort.ts';
import { uploadRef, type StepArgs } from './job.ts';

/** The checkpoint of this step, with the mark a failure for good leaves for a retry. */
export type CompleteCheckpoint = UploadAt<'complete'> & {
  /** The job failed for good at this step: its next run is a retry, which resumes. */
  resume?: true;
};

/** The checkpoint marked for a retry to resume (index.ts cleanup). */
export function markForResume(d: UploadAt<'complete'>): CompleteCheckpoint {
  return { ...d, resume: true };
}

/**
 * A child that failed for good: fail with its reason (for good: the failure policy's
 * clean-up keeps the multipart upload for a retry, or aborts it when the file changed).
 */
async function failOnChildFailure(args: StepArgs, d: UploadAt<'complete'>): Promise<void> {
  const failed = await firstFailedChild(args.job);
  if (!failed) return;
  throw new UnrecoverableError(
    parseReason(failed.reason).code !== undefined
      ? failed.reason
      : `[PART_FAILED] ${failed.child} of ${d.fileName} failed for good: ${failed.reason}`,
  );
}

/**
 * The run after a retry of a job that failed for good at this step: the child failures it
 * recorded are taken back (those children are retried), the parts not done are added, and
 * the mark is cleared (saved last: a run cut off before it does the same again).
 */
async function resume(args: StepArgs, marked: CompleteCheckpoint): Promise<UploadAt<'complete'>> {
  const { job } = args;
  const mp = marked.multipart;
  const done = await partsDone(job, mp.round ?? 0);
  const missing = await args.deps.parts.addMissingParts(
    { id: String(job.id), queue: job.queueQualifiedName },
    uploadRef(job),
    mp,
    done,
    { resume: true },
  );
  await job.log(
    `retried: resuming the multipart upload with ${done.size} of ${mp.partCount} parts done; ${missing} to send`,
  );
  const d: CompleteCheckpoint = { ...marked };
  delete d.resume;
  await args.save(d);
  return d;
}

export async function complete(
  args: StepArgs,
  checkpoint: UploadAt<'complete'>,
): Promise<StepOutcome<UploadJobData, UploadResult>> {
  const { deps, job, run } = args;
  const { engine, parts: partJobs, vault } = deps;
  const marked: CompleteCheckpoint = checkpoint;
  const d = marked.resume ? await resume(args, marked) : checkpoint;
  const mp = d.multipart;
  const ref = uploadRef(job);

  await failOnChildFailure(args, d);
  // First in line: hashing the whole file takes longer than sending it, so it must run
  // beside the parts, not queue behind them (the bench showed it starting last).
  if (!d.hashes) await partJobs.addHash(ref);
  let parts = await partsDone(job, mp.round ?? 0);
  if (parts.size < mp.partCount) {
    await partJobs.addMissingParts(
      { id: String(job.id), queue: job.queueQualifiedName },
      ref,
      mp,
      parts,
    );
    if (await job.moveToWaitingChildren(run.token ?? '')) throw new WaitingChildrenError();
    await failOnChildFailure(args, d);
    parts = await partsDone(job, mp.round ?? 0);
  }
  if (parts.size !== mp.partCount) {
    throw new AppError(
      'UPLOAD_INCOMPLETE',
      `${d.fileName}: ${parts.size} of ${mp.partCount} parts are done but no part job is pending.`,
    );
  }
  await assertUnchanged(d);
  if (!d.hashes) {
    // The hash job already found the file changed: do not store a mixture.
    const err = await partJobs.hashFailure(ref);
    if (err && errorCode(err) === 'FILE_CHANGED') {
      await abortMultipart(deps, job, mp, 'the file changed', run);
      throw new UnrecoverableError(formatReason(err));
    }
  }

  const done = await engine.completeOrConfirm(openUpload(mp), [...parts.values()], {
    size: d.size,
    what: d.fileName,
  });
  if (done.replacedParts.length > 0)
    run.log.warn(
      { parts: done.replacedParts.slice(0, 20) },
      'part ETags differ from ListParts; using the ones S3 holds',
    );
  if (done.confirmed)
    run.log.info(
      { etag: done.etag },
      'multipart upload already completed; confirmed with HeadObject',
    );
  await job.log(`multipart upload completed: ${mp.partCount} parts, ETag ${done.etag}`);
  // Checked right before (fence.ts): a worker that lost the lock aborts nothing and leaves
  // the credentials to the new owner.
  await run.lock.check('abort stray multipart uploads');
  await engine.abortStrays(mp, mp.uploadId);
  engine.release(mp);
  await unlessLockLost(vault.delete(mp.vaultKey, run.lock));
  return { next: { ...d, step: 'finalize', stored: true, bytesSent: d.size } };
}
