/**
 * Step 2 on the `s3` transport (JCDS v1 temporary credentials, straight to S3).
 * POST /api/v1/jcds/files gives credentials, bucket and path; they go into the vault
 * (never into job data). Below the split threshold the file goes up in this job
 * (shared/upload/single.ts) and the next checkpoint is `finalize`. Above it:
 * CreateMultipartUpload, and the next checkpoint is `complete` with {uploadId, key,
 * partSize}.
 */
import { AppError } from '../../../shared/errors.ts';
import { openIdentified } from '../../../shared/file-identity.ts';
import { assertUnchanged } from '../../../shared/files.ts';
import type {
  MultipartState,
  UploadAt,
  UploadJobData,
  UploadResult,
} from '../../../shared/queues/jobs.ts';
import { uploadVaultKey } from '../../../shared/queues/names.ts';
import { openUpload, type ObjectTarget } from '../../../shared/upload/multipart.ts';
import { knownHashes } from '../../../shared/upload/content.ts';
import { planParts } from '../../../shared/upload/part-plan.ts';
import { singlePartSize, uploadSingle } from '../../../shared/upload/single.ts';
import { fromJcds } from '../../../shared/vault.ts';
import { unlessLockLost } from '../../fence.ts';
import type { StepOutcome } from '../../step-machine.ts';
import { progress, type StepArgs } from './job.ts';

export async function stageS3(
  { deps, job, run }: StepArgs,
  d: UploadAt<'stage'>,
): Promise<StepOutcome<UploadJobData, UploadResult>> {
  const { engine, vault } = deps;
  const { log, signal } = run;
  const vaultKey = uploadVaultKey(String(job.id));
  const created = await deps.jamf.createJcdsFile();
  // Fenced: a worker woken past its lock must not replace the new owner's credentials.
  const creds = await vault.put(vaultKey, fromJcds(created), run.lock);
  const target: ObjectTarget = {
    bucket: creds.bucketName,
    key: `${creds.path}${d.fileName}`,
    region: creds.region,
    vaultKey,
  };

  if (d.size < deps.config.splitThreshold) {
    // Read through a descriptor checked to be the enqueued file; checked again after.
    const handle = await openIdentified(d);
    let streamed;
    try {
      streamed = await uploadSingle(engine.sessions, target, {
        path: d.path,
        handle,
        fileName: d.fileName,
        partSize: deps.config.partSize,
        signal,
        // Not the last (all bytes): finalize's 'verifying' follows at once with the same
        // count, one Redis write instead of two for a small file.
        onProgress: loaded => {
          if (loaded < d.size) void progress(job, loaded, 'uploading').catch(() => undefined);
        },
      });
    } finally {
      await handle.close();
    }
    await assertUnchanged(d);
    const known = knownHashes(d.hashes);
    if (known && known.sha256 !== streamed.sha256) {
      throw new AppError(
        'FILE_CHANGED',
        `${d.path} changed while it was being uploaded (its hash differs from the one taken before); nothing was published. Enqueue it again once it is final.`,
      );
    }
    deps.metrics.bytesUploaded(d.size);
    await job.log(
      `uploaded ${d.size} bytes in one request set to s3://${target.bucket}/${target.key}`,
    );
    log.info({ key: target.key, size: d.size }, 'single upload done');
    // lib-storage sent it in parts: an earlier attempt cut off mid-way may have left one.
    // Checked right before: a worker that lost the lock aborts nothing (the new owner's
    // uploads) and keeps its hands off the credentials the new owner uses (fence.ts).
    if (d.size > singlePartSize(deps.config.partSize)) {
      await run.lock.check('abort stray multipart uploads');
      await engine.abortStrays(target);
    }
    engine.release(target);
    // Nothing needs these credentials any more: drop them now rather than keep one entry
    // per small upload in Redis until they expire (an hour on JCDS).
    await unlessLockLost(vault.delete(vaultKey, run.lock));
    return {
      next: {
        ...d,
        step: 'finalize',
        stored: true,
        hashes: { ...known, sha256: streamed.sha256 },
        bytesSent: d.size,
      },
    };
  }

  const plan = planParts(d.size, deps.config.partSize);
  const { uploadId, checksumAlgorithm } = await engine.create(target, d.fileName, signal);
  const multipart: MultipartState = {
    uploadId,
    ...(checksumAlgorithm ? { checksumAlgorithm } : {}),
    bucket: target.bucket,
    key: target.key,
    region: target.region,
    partSize: plan.partSize,
    partCount: plan.partCount,
    vaultKey,
    ...(d.resends ? { round: d.resends } : {}),
  };
  await job.log(`multipart upload started: ${plan.partCount} parts of ${plan.partSize} bytes`);
  log.info(
    { key: target.key, partCount: plan.partCount, partSize: plan.partSize },
    'multipart upload created',
  );
  return {
    // Hashes of an earlier version's checkpoint (no SHA-256) are dropped: the hash job runs.
    next: {
      ...d,
      step: 'complete',
      chosenTransport: 's3',
      multipart,
      hashes: knownHashes(d.hashes),
    },
    // The checkpoint refused (the lock was lost while S3 created it): no checkpoint names
    // this upload, nobody sends parts to it; abort it rather than leave it open.
    undo: async () => {
      await engine.abort(openUpload(multipart));
      engine.release(target);
    },
  };
}
