/**
 * Step 2 on the `s3` transport (JCDS v1 temporary credentials, straight to S3).
 * POST /api/v1/jcds/files gives credentials, bucket and path; they go into the vault
 * (never into job data). Below the split threshold the file goes up in this job
 * (shared/upload/single.ts) and the next checkpoint is `finalize`. Above it:
 * CreateMultipartUpload, and the next checkpoint is `complete` with {uploadId, key,
 * partSize}.
 */
import { AppError } from '../../../shared/errors.ts';
import { assertUnchanged } from '../../../shared/files.ts';
import type {
  MultipartState,
  UploadAt,
  UploadJobData,
  UploadResult,
} from '../../../shared/queues/jobs.ts';
import { uploadVaultKey } from '../../../shared/queues/names.ts';
import type { ObjectTarget } from '../../../shared/upload/multipart.ts';
import { planParts } from '../../../shared/upload/part-plan.ts';
import { singlePartSize, uploadSingle } from '../../../shared/upload/single.ts';
import { fromJcds } from '../../../shared/vault.ts';
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
  const creds = await vault.put(vaultKey, fromJcds(created));
  const target: ObjectTarget = {
    bucket: creds.bucketName,
    key: `${creds.path}${d.fileName}`,
    region: creds.region,
    vaultKey,
  };

  if (d.size < deps.config.splitThreshold) {
    await assertUnchanged(d);
    const streamed = await uploadSingle(engine.sessions, target, {
      path: d.path,
      fileName: d.fileName,
      partSize: deps.config.partSize,
      signal,
      onProgress: loaded => void progress(job, loaded, 'uploading').catch(() => undefined),
    });
    await assertUnchanged(d);
    if (d.hashes && (d.hashes.sha3_512 !== streamed.sha3_512 || d.hashes.md5 !== streamed.md5)) {
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
    if (d.size > singlePartSize(deps.config.partSize)) await engine.abortStrays(target);
    engine.release(target);
    // Nothing needs these credentials any more: drop them now rather than keep one entry
    // per small upload in Redis until they expire (an hour on JCDS).
    await vault.delete(vaultKey).catch(() => undefined);
    return {
      next: { ...d, step: 'finalize', stored: true, hashes: streamed, bytesSent: d.size },
    };
  }

  const plan = planParts(d.size, deps.config.partSize);
  const uploadId = await engine.create(target, d.fileName, signal);
  const multipart: MultipartState = {
    uploadId,
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
  return { next: { ...d, step: 'complete', chosenTransport: 's3', multipart } };
}
