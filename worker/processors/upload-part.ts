/**
 * The `upload-part` queue: `part` jobs send one byte range of a file as one S3 part, and
 * the `hash` job computes the file's SHA3-512 and MD5 while the parts go up.
 *
 * A part reads exactly its range, checks the file did not change (size and mtime as
 * enqueued, before and after the read), sends it with Content-MD5 so S3 checks the bytes,
 * and returns {partNumber, etag, size}: that return value is the checkpoint, kept by
 * BullMQ in the parent's `processed` hash. ExpiredToken renews the credentials for the
 * fleet and resends without using an attempt; SlowDown rate-limits the part queue.
 */
import { open } from 'node:fs/promises';
import { UploadPartCommand } from '@aws-sdk/client-s3';
import type { Job } from 'bullmq';
import { AppError } from '../../shared/errors.ts';
import { assertUnchanged } from '../../shared/files.ts';
import { hashFile, md5Base64 } from '../../shared/hash.ts';
import type { HashJobData, HashResult, PartJobData, PartResult } from '../../shared/queues/jobs.ts';
import { QUEUE_PREFIX, QUEUES } from '../../shared/queues/names.ts';
import { toS3AppError } from '../../shared/s3/errors.ts';
import type { WorkerContext } from '../context.ts';
import { withRenewal } from './upload-s3.ts';

/**
 * Part buffers are reused: a worker holds at most (part concurrency) buffers of one part
 * size, instead of allocating 16 MiB per part and waiting for the GC to return it.
 */
const pool = new Map<number, Buffer[]>();
function takeBuffer(length: number): Buffer {
  return pool.get(length)?.pop() ?? Buffer.allocUnsafeSlow(length);
}
function giveBuffer(buf: Buffer): void {
  const list = pool.get(buf.length) ?? [];
  if (list.length < 16) list.push(buf);
  pool.set(buf.length, list);
}

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = takeBuffer(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done !== length) {
      giveBuffer(buf);
      throw new AppError(
        'FILE_CHANGED',
        `${path} is shorter than expected: read ${done} of ${length} bytes at offset ${offset}.`,
      );
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** Adds `bytes` to the parent's running total and publishes it as the parent's progress. */
async function bumpParentProgress(
  ctx: WorkerContext,
  d: PartJobData,
  bytes: number,
): Promise<void> {
  const counterKey = `${QUEUE_PREFIX}:progress:${d.uploadJobId}`;
  const sent = await ctx.redis.incrby(counterKey, bytes);
  await ctx.redis.expire(counterKey, 7 * 24 * 3600);
  const jobKey = `${QUEUE_PREFIX}:${QUEUES.upload}:${d.uploadJobId}`;
  // Only while the parent exists (HSET on a removed job would resurrect a stub hash).
  await ctx.redis.eval(
    "if redis.call('exists', KEYS[1]) == 1 then redis.call('hset', KEYS[1], 'progress', ARGV[1]) end return 1",
    1,
    jobKey,
    JSON.stringify({ bytesSent: Math.min(sent, d.size), total: d.size, phase: 'uploading parts' }),
  );
}

export async function processPart(
  ctx: WorkerContext,
  job: Job<PartJobData, PartResult>,
  signal?: AbortSignal,
): Promise<PartResult> {
  const d = job.data;
  await assertUnchanged(d);
  const body = await readRange(d.path, d.offset, d.length);
  let out;
  try {
    await assertUnchanged(d);
    const contentMd5 = md5Base64(body);
    const s3 = ctx.s3For(d.vaultKey, d.region);
    out = await withRenewal(ctx, d.vaultKey, () =>
      s3.send(
        new UploadPartCommand({
          Bucket: d.bucket,
          Key: d.key,
          UploadId: d.uploadId,
          PartNumber: d.partNumber,
          Body: body,
          ContentLength: d.length,
          ContentMD5: contentMd5,
        }),
        signal ? { abortSignal: signal } : {},
      ),
    ).catch(err => {
      throw toS3AppError(err, `UploadPart ${d.partNumber} of ${d.fileName}`);
    });
  } finally {
    giveBuffer(body);
  }
  if (!out.ETag)
    throw new AppError(
      'S3_ERROR',
      `UploadPart ${d.partNumber} of ${d.fileName} returned no ETag.`,
      { retryable: true },
    );
  ctx.metrics.bytesUploaded(d.length);
  await bumpParentProgress(ctx, d, d.length).catch(() => undefined);
  return { partNumber: d.partNumber, etag: out.ETag, size: d.length };
}

export async function processHash(
  job: Job<HashJobData, HashResult>,
  signal?: AbortSignal,
): Promise<HashResult> {
  const d = job.data;
  await assertUnchanged(d);
  const h = await hashFile(d.path, signal ? { signal } : {});
  await assertUnchanged(d);
  if (h.bytes !== d.size)
    throw new AppError(
      'FILE_CHANGED',
      `${d.path} changed while it was hashed (${h.bytes} of ${d.size} bytes).`,
    );
  return { kind: 'hash', sha3_512: h.sha3_512, md5: h.md5 };
}
