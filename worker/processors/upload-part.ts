/**
 * The `upload-part` queue: part jobs send one byte range of a file as one S3 part, and
 * the hash job (told apart by its data: it has no part number) computes the file's
 * SHA3-512 and MD5 while the parts go up (shared/upload/part-queue.ts adds both).
 *
 * A part reads exactly its range, checks the file did not change (size and mtime as
 * enqueued, before and after the read), sends it with Content-MD5 so S3 checks the bytes,
 * and returns {partNumber, etag, size}: that return value is the checkpoint, kept by
 * BullMQ in the parent's `processed` hash. ExpiredToken renews the credentials for the
 * fleet and resends without using an attempt; SlowDown rate-limits the part queue.
 */
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/errors.ts';
import { assertUnchanged } from '../../shared/files.ts';
import { hashFile } from '../../shared/hash/index.ts';
import type { Logger } from '../../shared/logger.ts';
import type { HashJobData, HashResult, PartJobData, PartResult } from '../../shared/queues/jobs.ts';
import { jobKey, QUEUES, uploadProgressKey } from '../../shared/queues/names.ts';
import type { MultipartEngine } from '../../shared/upload/multipart.ts';
import { readRange, releaseBuffer } from '../../shared/upload/part-reader.ts';
import { defineProcessor } from '../failure-policy.ts';
import type { FleetMetrics } from '../metrics.ts';

export interface PartDeps {
  engine: MultipartEngine;
  redis: Redis;
  metrics: FleetMetrics;
  logger: Logger;
}

type PartQueueJob = Job<PartJobData | HashJobData, PartResult | HashResult>;

/** A part job's data (it has a part number); anything else in this queue is the hash job. */
export function isPartData(d: PartJobData | HashJobData): d is PartJobData {
  return typeof (d as Partial<PartJobData>).partNumber === 'number';
}

/** Adds `bytes` to the parent's running total and publishes it as the parent's progress. */
async function bumpParentProgress(redis: Redis, d: PartJobData, bytes: number): Promise<void> {
  const counterKey = uploadProgressKey(d.uploadJobId);
  const sent = await redis.incrby(counterKey, bytes);
  await redis.expire(counterKey, 7 * 24 * 3600);
  // Only while the parent exists (HSET on a removed job would resurrect a stub hash).
  await redis.eval(
    "if redis.call('exists', KEYS[1]) == 1 then redis.call('hset', KEYS[1], 'progress', ARGV[1]) end return 1",
    1,
    jobKey(QUEUES.upload, d.uploadJobId),
    JSON.stringify({ bytesSent: Math.min(sent, d.size), total: d.size, phase: 'uploading parts' }),
  );
}

export async function processPart(
  deps: PartDeps,
  d: PartJobData,
  signal?: AbortSignal,
): Promise<PartResult> {
  await assertUnchanged(d);
  const body = await readRange(d.path, d.offset, d.length);
  let etag;
  try {
    await assertUnchanged(d);
    etag = await deps.engine.sendPart(
      d,
      { partNumber: d.partNumber, body, what: d.fileName },
      signal,
    );
  } finally {
    releaseBuffer(body);
  }
  deps.metrics.bytesUploaded(d.length);
  await bumpParentProgress(deps.redis, d, d.length).catch(() => undefined);
  return { partNumber: d.partNumber, etag, size: d.length };
}

export async function processHash(d: HashJobData, signal?: AbortSignal): Promise<HashResult> {
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

export function partProcessor(deps: PartDeps, queue: Queue) {
  return defineProcessor<PartJobData | HashJobData, PartResult | HashResult>(
    {
      queue: 'upload-part',
      rateLimit: queue,
      throttleMs: 2_000,
      logFields: job => ({
        job: isPartData(job.data) ? 'part' : 'hash',
        ...(isPartData(job.data) ? { part: job.data.partNumber } : {}),
      }),
      // Told apart by their data, not their names (names are free text for people).
      run: (job: PartQueueJob, { signal }) =>
        isPartData(job.data) ? processPart(deps, job.data, signal) : processHash(job.data, signal),
    },
    deps,
  );
}
