/**
 * Step 3, complete (s3 multipart only): adds the hash job and any part child not yet done
 * (deterministic job ids make a re-add a no-op), waits for the parts
 * (moveToWaitingChildren), then completes the multipart upload from the children's ETags
 * (shared/upload/multipart.ts: cross-checked with ListParts, confirmed with HeadObject
 * after NoSuchUpload). A child that failed for good wakes this job
 * (continueParentOnFailure): it aborts the multipart upload, removes the children still
 * waiting and fails with the part's reason.
 */
import { UnrecoverableError, WaitingChildrenError } from 'bullmq';
import { AppError, errorCode, formatReason, parseReason } from '../../../shared/errors.ts';
import { assertUnchanged } from '../../../shared/files.ts';
import type { UploadAt, UploadJobData, UploadResult } from '../../../shared/queues/jobs.ts';
import { openUpload } from '../../../shared/upload/multipart.ts';
import { firstFailedChild, partsDone } from '../../../shared/upload/part-queue.ts';
import type { StepOutcome } from '../../step-machine.ts';
import { abortMultipart } from './abort.ts';
import { uploadRef, type StepArgs } from './job.ts';

/** A child that failed for good: abort the multipart upload and fail with its reason. */
async function failOnChildFailure(args: StepArgs, d: UploadAt<'complete'>): Promise<void> {
  const failed = await firstFailedChild(args.job);
  if (!failed) return;
  await abortMultipart(
    args.deps,
    args.job,
    d.multipart,
    `child ${failed.child} failed`,
    args.run.log,
  );
  throw new UnrecoverableError(
    parseReason(failed.reason).code !== undefined
      ? failed.reason
      : `[PART_FAILED] ${failed.child} of ${d.fileName} failed for good: ${failed.reason}`,
  );
}

export async function complete(
  args: StepArgs,
  d: UploadAt<'complete'>,
): Promise<StepOutcome<UploadJobData, UploadResult>> {
  const { deps, job, run } = args;
  const { engine, parts: partJobs, vault } = deps;
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
      await abortMultipart(deps, job, mp, 'the file changed', run.log);
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
  await engine.abortStrays(mp, mp.uploadId);
  engine.release(mp);
  await vault.delete(mp.vaultKey).catch(() => undefined);
  return { next: { ...d, step: 'finalize', stored: true, bytesSent: d.size } };
}
