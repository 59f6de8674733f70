/**
 * Steps 2 and 3 on the `s3` transport (JCDS v1 temporary credentials, straight to S3).
 *
 * stage: POST /api/v1/jcds/files gives credentials, bucket and path; they go into the
 *   vault (never into job data). Below the split threshold the file goes up in this job
 *   (lib-storage Upload, hashing the bytes as they stream to catch a file changing
 *   mid-upload). Above it: CreateMultipartUpload, checkpoint {uploadId, key, partSize} in
 *   the job data, then the `complete` step adds the children.
 * complete: adds the hash job and any part child not yet done (deterministic job ids make
 *   a re-add a no-op), waits for the parts (moveToWaitingChildren), then completes the
 *   multipart upload from the children's ETags, cross-checked with ListParts. It is
 *   idempotent: a repeat that finds NoSuchUpload checks the object with HeadObject (size
 *   and md5-N ETag). A child that failed for good wakes this job (continueParentOnFailure):
 *   it aborts the multipart upload, removes the children still waiting and fails with the
 *   part's reason.
 *
 * The whole-file hash (SHA3-512 + MD5, for Jamf's verification) is a job of the part queue
 * but not a child: hashing is slower than sending (SHA3-512 runs at about 240 MiB/s a
 * core), and as a child it held the CompleteMultipartUpload back until it was done. Now the
 * object is completed as soon as the parts are in, Jamf starts hashing the stored file
 * meanwhile, and `finalize` waits for the local hash (awaitHash) before it writes the
 * package record.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  type Part,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import { AppError, errorCode } from '../../shared/errors.ts';
import { assertUnchanged } from '../../shared/files.ts';
import { fromJcds } from '../../shared/vault.ts';
import { md5Hex } from '../../shared/hash.ts';
import { PART_JOB_OPTIONS } from '../../shared/queues/defaults.ts';
import { hashJobId } from '../../shared/queues/names.ts';
import type {
  FileHashes,
  HashJobData,
  HashResult,
  MultipartState,
  PartJobData,
  PartResult,
} from '../../shared/queues/jobs.ts';
import {
  isAccessDenied,
  isExpiredToken,
  isNoSuchUpload,
  s3Code,
  s3Status,
  toS3AppError,
} from '../../shared/s3/errors.ts';
import { allParts, multipartEtag, planParts } from '../../shared/s3/part-plan.ts';
import type { WorkerContext } from '../context.ts';
import { progress, saveStep, vaultKeyFor, type StepArgs, type UploadJob } from './upload-job.ts';

/** Retries an S3 call after ExpiredToken with renewed credentials (not a job attempt). */
export async function withRenewal<T>(
  ctx: WorkerContext,
  vaultKey: string,
  fn: () => Promise<T>,
): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      // A HEAD error has no body, so S3's ExpiredToken arrives as a bare 400: renew then too.
      const headExpired = s3Status(err) === 400 && s3Code(err) === 'Unknown';
      if (!(isExpiredToken(err) || headExpired) || i >= 4) throw err;
      await ctx.renewAfterExpiry(vaultKey);
    }
  }
}

export async function stageS3(args: StepArgs): Promise<void> {
  const { ctx, job, log, signal } = args;
  const d = job.data;
  const vaultKey = vaultKeyFor(job);
  const created = await ctx.jamf.createJcdsFile();
  const creds = await ctx.vault.put(vaultKey, fromJcds(created));
  const key = `${creds.path}${d.fileName}`;
  const s3 = ctx.s3For(vaultKey, creds.region);

  if (d.size < ctx.config.splitThreshold) {
    await assertUnchanged(d);
    const sha3 = createHash('sha3-512');
    const md5 = createHash('md5');
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    const source = createReadStream(d.path, { highWaterMark: 1 << 20 });
    source.on('data', chunk => {
      sha3.update(chunk as Buffer);
      md5.update(chunk as Buffer);
    });
    source.on('error', err => body.destroy(err));
    source.pipe(body);
    const upload = new Upload({
      client: s3,
      params: {
        Bucket: creds.bucketName,
        Key: key,
        Body: body,
        ContentType: 'application/octet-stream',
      },
      partSize: Math.max(ctx.config.partSize, 5 * 1024 * 1024),
      queueSize: 4,
      leavePartsOnError: false,
    });
    upload.on('httpUploadProgress', p => {
      if (p.loaded !== undefined) void progress(job, p.loaded, 'uploading').catch(() => undefined);
    });
    const onAbort = (): void => void upload.abort().catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await withRenewal(ctx, vaultKey, () => upload.done());
    } catch (err) {
      throw toS3AppError(err, `the upload of ${d.fileName}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    await assertUnchanged(d);
    const streamed = { sha3_512: sha3.digest('hex'), md5: md5.digest('hex') };
    if (d.hashes && (d.hashes.sha3_512 !== streamed.sha3_512 || d.hashes.md5 !== streamed.md5)) {
      throw new AppError(
        'FILE_CHANGED',
        `${d.path} changed while it was being uploaded (its hash differs from the one taken before); nothing was published. Enqueue it again once it is final.`,
      );
    }
    ctx.metrics.bytesUploaded(d.size);
    await job.log(`uploaded ${d.size} bytes in one request set to s3://${creds.bucketName}/${key}`);
    log.info({ key, size: d.size }, 'single upload done');
    // lib-storage sent it in parts: an earlier attempt cut off mid-way may have left one.
    if (d.size > Math.max(ctx.config.partSize, 5 * 1024 * 1024))
      await abortStrayUploads(ctx, vaultKey, creds.region, creds.bucketName, key);
    ctx.releaseS3(vaultKey);
    // Nothing needs these credentials any more: drop them now rather than keep one entry
    // per small upload in Redis until they expire (an hour on JCDS).
    await ctx.vault.delete(vaultKey).catch(() => undefined);
    await saveStep(job, { step: 'finalize', stored: true, hashes: streamed, bytesSent: d.size });
    return;
  }

  const plan = planParts(d.size, ctx.config.partSize);
  const mpu = await withRenewal(ctx, vaultKey, () =>
    s3.send(
      new CreateMultipartUploadCommand({
        Bucket: creds.bucketName,
        Key: key,
        ContentType: 'application/octet-stream',
      }),
      signal ? { abortSignal: signal } : {},
    ),
  ).catch(err => {
    throw toS3AppError(err, `CreateMultipartUpload for ${d.fileName}`);
  });
  if (!mpu.UploadId)
    throw new AppError('S3_ERROR', `CreateMultipartUpload for ${d.fileName} returned no UploadId.`);
  const multipart: MultipartState = {
    uploadId: mpu.UploadId,
    bucket: creds.bucketName,
    key,
    region: creds.region,
    partSize: plan.partSize,
    partCount: plan.partCount,
    vaultKey,
  };
  await job.log(`multipart upload started: ${plan.partCount} parts of ${plan.partSize} bytes`);
  log.info({ key, partCount: plan.partCount, partSize: plan.partSize }, 'multipart upload created');
  await saveStep(job, { step: 'complete', multipart });
}

/** The part children done so far (their ETags, checkpointed in this job's `processed`). */
async function partsDone(job: UploadJob): Promise<Map<number, PartResult>> {
  const values = await job.getChildrenValues<PartResult>();
  const parts = new Map<number, PartResult>();
  for (const v of Object.values(values)) if (v && 'partNumber' in v) parts.set(v.partNumber, v);
  return parts;
}

function childId(job: UploadJob, what: string): string {
  return `${job.id}-${what}`;
}

function partJobOptions(ctx: WorkerContext) {
  return {
    ...PART_JOB_OPTIONS,
    attempts: ctx.config.partAttempts,
    backoff: { type: 'exponential', delay: ctx.config.retryDelayMs, jitter: 0.3 },
  };
}

/** Adds the hash job unless it exists (a deterministic id makes a repeat a no-op). */
async function addHashJob(ctx: WorkerContext, job: UploadJob): Promise<void> {
  const d = job.data;
  const data: HashJobData = {
    uploadJobId: String(job.id),
    fileName: d.fileName,
    path: d.path,
    size: d.size,
    mtimeMs: d.mtimeMs,
  };
  // LIFO: at the head of the queue, so it starts before the parts added after it.
  await ctx.partQueue.add('hash', data, {
    ...partJobOptions(ctx),
    jobId: hashJobId(String(job.id)),
    lifo: true,
  });
}

/**
 * The hash job failed for good: it is removed (so a retry of the upload hashes again) and
 * its reason returned as an error with the same code.
 */
async function hashFailure(hashJob: Job, fileName: string): Promise<AppError> {
  const reason = hashJob.failedReason ?? 'unknown reason';
  await hashJob.remove().catch(() => undefined);
  const code = /^\[([A-Z_]+)\]/.exec(reason)?.[1];
  const message = `the hash of ${fileName} failed: ${reason.replace(/^\[[A-Z_]+\]\s*/, '')}`;
  return code === 'FILE_CHANGED' || code === 'FILE_NOT_FOUND' || code === 'FILE_UNREADABLE'
    ? new AppError(code, message)
    : new AppError('UPLOAD_INCOMPLETE', message, { retryable: true });
}

/**
 * The file's hashes from the upload's hash job, waiting for it to finish (polling its
 * state, 50 ms growing to 500 ms). A hash job that is gone (removed with the finished jobs
 * of a busy queue before this read it) is added again.
 */
export async function awaitHash(
  ctx: WorkerContext,
  job: UploadJob,
  signal?: AbortSignal,
): Promise<FileHashes> {
  let delay = 50;
  const id = hashJobId(String(job.id));
  for (;;) {
    signal?.throwIfAborted();
    // State first, then the job: a job read while active has no return value yet, and
    // completed and failed are final, so a read after them sees the outcome.
    const state = await ctx.partQueue.getJobState(id);
    if (state === 'completed' || state === 'failed' || state === 'unknown') {
      const hashJob = await Job.fromId<HashJobData, HashResult>(ctx.partQueue, id);
      if (!hashJob) {
        // Gone (or never added): hash again.
        await addHashJob(ctx, job);
        continue;
      }
      if (state === 'failed') throw await hashFailure(hashJob, job.data.fileName);
      if (state === 'completed') {
        const r = hashJob.returnvalue;
        if (!r?.sha3_512 || !r.md5)
          throw new AppError('INTERNAL', `${job.data.fileName}: the hash job returned nothing`);
        return { sha3_512: r.sha3_512, md5: r.md5 };
      }
      // 'unknown' with the job present: added a moment ago; look again.
    }
    // Aborted: throw the signal's reason (a lost lock, a shutdown), not a bare AbortError.
    await sleep(delay, undefined, signal ? { signal } : {}).catch((err: unknown) => {
      signal?.throwIfAborted();
      throw err;
    });
    delay = Math.min(delay * 2, 500);
  }
}

async function addMissingChildren(
  ctx: WorkerContext,
  job: UploadJob,
  mp: MultipartState,
  done: Map<number, PartResult>,
): Promise<number> {
  const d = job.data;
  const parent = { id: String(job.id), queue: job.queueQualifiedName };
  const opts = { ...partJobOptions(ctx), parent, continueParentOnFailure: true };
  const adds: Array<{ name: string; data: PartJobData; opts: typeof opts & { jobId: string } }> =
    [];
  for (const r of allParts(d.size, { partSize: mp.partSize, partCount: mp.partCount })) {
    if (done.has(r.partNumber)) continue;
    const data: PartJobData = {
      uploadJobId: String(job.id),
      fileName: d.fileName,
      path: d.path,
      size: d.size,
      mtimeMs: d.mtimeMs,
      bucket: mp.bucket,
      key: mp.key,
      region: mp.region,
      uploadId: mp.uploadId,
      vaultKey: mp.vaultKey,
      partNumber: r.partNumber,
      offset: r.offset,
      length: r.length,
    };
    adds.push({ name: 'part', data, opts: { ...opts, jobId: childId(job, `p${r.partNumber}`) } });
  }
  for (let i = 0; i < adds.length; i += 500) await ctx.partQueue.addBulk(adds.slice(i, i + 500));
  return adds.length;
}

/** Aborts the multipart upload and removes waiting children; best effort, logged. */
export async function abortMultipart(
  ctx: WorkerContext,
  job: UploadJob,
  reason: string,
): Promise<void> {
  const mp = job.data.multipart;
  await job.removeUnprocessedChildren().catch(() => undefined);
  if (!mp) return;
  try {
    await withRenewal(ctx, mp.vaultKey, () =>
      ctx.s3For(mp.vaultKey, mp.region).send(
        new AbortMultipartUploadCommand({
          Bucket: mp.bucket,
          Key: mp.key,
          UploadId: mp.uploadId,
        }),
      ),
    );
    await job.log(`multipart upload aborted: ${reason}`);
  } catch (err) {
    if (!isNoSuchUpload(err))
      ctx.logger.warn(
        { err: toS3AppError(err, 'AbortMultipartUpload'), jobId: job.id },
        'abort failed',
      );
  }
  try {
    await abortStrayUploads(ctx, mp.vaultKey, mp.region, mp.bucket, mp.key);
  } finally {
    ctx.releaseS3(mp.vaultKey);
    await ctx.vault.delete(mp.vaultKey).catch(() => undefined);
  }
}

/**
 * Aborts the open multipart uploads of `key` other than `keep`: leftovers of an attempt cut
 * off after S3 created its upload but before the UploadId was checkpointed (a cancelled
 * CreateMultipartUpload, a worker that lost its lock while Redis was away). One upload per
 * file name is in flight at a time (the producer deduplicates by file name), so any other
 * upload of this key is ours to clean. Best effort: credentials that may not list uploads
 * skip it.
 */
async function abortStrayUploads(
  ctx: WorkerContext,
  vaultKey: string,
  region: string,
  bucket: string,
  key: string,
  keep?: string,
): Promise<void> {
  const s3 = ctx.s3For(vaultKey, region);
  try {
    const listed = await withRenewal(ctx, vaultKey, () =>
      s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key })),
    );
    for (const u of listed.Uploads ?? []) {
      if (u.Key !== key || !u.UploadId || u.UploadId === keep) continue;
      const uploadId = u.UploadId;
      await withRenewal(ctx, vaultKey, () =>
        s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })),
      ).catch(err => {
        if (!isNoSuchUpload(err)) throw err;
      });
      ctx.logger.info({ key, uploadId }, 'stray multipart upload of an earlier attempt aborted');
    }
  } catch (err) {
    if (!isAccessDenied(err))
      ctx.logger.warn(
        { err: toS3AppError(err, 'ListMultipartUploads'), key },
        'could not clean up stray multipart uploads',
      );
  }
}

async function listAllParts(ctx: WorkerContext, mp: MultipartState): Promise<Part[] | undefined> {
  const s3 = ctx.s3For(mp.vaultKey, mp.region);
  const out: Part[] = [];
  let marker: string | undefined;
  try {
    for (;;) {
      const page = await withRenewal(ctx, mp.vaultKey, () =>
        s3.send(
          new ListPartsCommand({
            Bucket: mp.bucket,
            Key: mp.key,
            UploadId: mp.uploadId,
            ...(marker ? { PartNumberMarker: marker } : {}),
          }),
        ),
      );
      out.push(...(page.Parts ?? []));
      if (!page.IsTruncated || !page.NextPartNumberMarker) return out;
      marker = page.NextPartNumberMarker;
    }
  } catch (err) {
    // JCDS credentials may not allow ListParts (jamf-api.md 2.2): skip the cross-check.
    if (isAccessDenied(err)) return undefined;
    throw err;
  }
}

/** A child that failed for good: abort the multipart upload and fail with its reason. */
async function failOnChildFailure(ctx: WorkerContext, job: UploadJob): Promise<void> {
  const failed = await job.getIgnoredChildrenFailures();
  const first = Object.entries(failed)[0];
  if (!first) return;
  const [childKey, reason] = first;
  const child = childKey.split(':').pop() ?? childKey;
  await abortMultipart(ctx, job, `child ${child} failed`);
  throw new UnrecoverableError(
    reason.startsWith('[')
      ? reason
      : `[PART_FAILED] ${child} of ${job.data.fileName} failed for good: ${reason}`,
  );
}

export async function completeS3(args: StepArgs): Promise<void> {
  const { ctx, job, token, log } = args;
  const d = job.data;
  const mp = d.multipart;
  if (!mp)
    throw new AppError('INTERNAL', `upload ${job.id} is at step complete without multipart state`);

  await failOnChildFailure(ctx, job);
  // First in line: hashing the whole file takes longer than sending it, so it must run
  // beside the parts, not queue behind them (the bench showed it starting last).
  if (!d.hashes) await addHashJob(ctx, job);
  let parts = await partsDone(job);
  if (parts.size < mp.partCount) {
    await addMissingChildren(ctx, job, mp, parts);
    if (await job.moveToWaitingChildren(token ?? '')) throw new WaitingChildrenError();
    await failOnChildFailure(ctx, job);
    parts = await partsDone(job);
  }
  if (parts.size !== mp.partCount) {
    throw new AppError(
      'UPLOAD_INCOMPLETE',
      `${d.fileName}: ${parts.size} of ${mp.partCount} parts are done but no part job is pending.`,
      {
        retryable: true,
      },
    );
  }
  await assertUnchanged(d);
  if (!d.hashes) {
    // The hash job already found the file changed: do not store a mixture.
    const id = hashJobId(String(job.id));
    const failed =
      (await ctx.partQueue.getJobState(id)) === 'failed'
        ? await Job.fromId(ctx.partQueue, id)
        : undefined;
    if (failed) {
      const err = await hashFailure(failed, d.fileName);
      if (errorCode(err) === 'FILE_CHANGED') {
        await abortMultipart(ctx, job, 'the file changed');
        throw new UnrecoverableError(`[FILE_CHANGED] ${err.message}`);
      }
    }
  }

  const sorted = [...parts.values()].sort((a, b) => a.partNumber - b.partNumber);
  const expectedEtag = multipartEtag(
    sorted.map(p => p.etag),
    md5Hex,
  );
  const s3 = ctx.s3For(mp.vaultKey, mp.region);
  const listed = await listAllParts(ctx, mp).catch(err => {
    if (isNoSuchUpload(err)) return 'gone' as const;
    throw toS3AppError(err, `ListParts for ${d.fileName}`);
  });
  if (Array.isArray(listed)) {
    const byNumber = new Map(listed.map(p => [p.PartNumber, p.ETag]));
    const wrong = sorted.filter(p => byNumber.get(p.partNumber) !== p.etag).map(p => p.partNumber);
    if (wrong.length > 0) {
      // A zombie worker may have re-sent a part after its lock was lost; S3 holds the
      // latest bytes of that part number, which are the same file range: use S3's ETag.
      log.warn(
        { parts: wrong.slice(0, 20) },
        'part ETags differ from ListParts; using the ones S3 holds',
      );
      for (const n of wrong) {
        const etag = byNumber.get(n);
        if (!etag)
          throw new AppError('UPLOAD_INCOMPLETE', `S3 does not hold part ${n} of ${d.fileName}.`, {
            retryable: false,
          });
        sorted[n - 1] = { partNumber: n, etag, size: sorted[n - 1]!.size };
      }
    }
  }
  const finalEtag = multipartEtag(
    sorted.map(p => p.etag),
    md5Hex,
  );
  try {
    await withRenewal(ctx, mp.vaultKey, () =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: mp.bucket,
          Key: mp.key,
          UploadId: mp.uploadId,
          MultipartUpload: { Parts: sorted.map(p => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      ),
    );
  } catch (err) {
    if (!isNoSuchUpload(err)) throw toS3AppError(err, `CompleteMultipartUpload for ${d.fileName}`);
    // Already completed by an earlier attempt that died before checkpointing: confirm.
    const head = await withRenewal(ctx, mp.vaultKey, () =>
      s3.send(new HeadObjectCommand({ Bucket: mp.bucket, Key: mp.key })),
    ).catch(e => {
      throw toS3AppError(e, `HeadObject for ${d.fileName}`);
    });
    if (
      head.ContentLength !== d.size ||
      (head.ETag && head.ETag !== finalEtag && head.ETag !== expectedEtag)
    ) {
      throw new AppError(
        'UPLOAD_INCOMPLETE',
        `The multipart upload of ${d.fileName} is gone and the stored object does not match (size ${head.ContentLength}, ETag ${head.ETag}, expected ${d.size} and ${finalEtag}).`,
      );
    }
    log.info({ etag: head.ETag }, 'multipart upload already completed; confirmed with HeadObject');
  }
  await job.log(`multipart upload completed: ${mp.partCount} parts, ETag ${finalEtag}`);
  await abortStrayUploads(ctx, mp.vaultKey, mp.region, mp.bucket, mp.key, mp.uploadId);
  ctx.releaseS3(mp.vaultKey);
  await ctx.vault.delete(mp.vaultKey).catch(() => undefined);
  await saveStep(job, { step: 'finalize', stored: true, bytesSent: d.size });
}
