/**
 * The `upload-part` queue: part jobs send one byte range of a file as one S3 part, and
 * the hash job (told apart by its data: it has no part number) computes the file's
 * SHA-256 while the parts go up (shared/upload/part-queue.ts adds both).
 *
 * A part reads exactly its range, checks the file did not change (size and mtime as
 * enqueued, before and after the read), sends it with a checksum S3 checks the bytes with
 * (x-amz-checksum-crc32; Content-MD5 for an upload an earlier version created), and
 * returns {partNumber, etag, size, checksumCRC32}: that return value is the checkpoint, kept by
 * BullMQ in the parent's `processed` hash. ExpiredToken renews the credentials for the
 * fleet and resends without using an attempt; SlowDown rate-limits the part queue.
 */
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../shared/config.ts';
import { AppError } from '../../shared/errors.ts';
import { assertUnchanged } from '../../shared/files.ts';
import { hashIdentified } from '../../shared/file-identity.ts';
import type { Logger } from '../../shared/logger.ts';
import type { HashJobData, HashResult, PartJobData, PartResult } from '../../shared/queues/jobs.ts';
import { jobKey, QUEUES } from '../../shared/queues/names.ts';
import type { MultipartEngine } from '../../shared/upload/multipart.ts';
import { PartBufferPool } from '../../shared/upload/part-buffers.ts';
import { readRange } from '../../shared/upload/part-reader.ts';
import { defineProcessor } from '../failure-policy.ts';
import type { FitnessHook } from '../fitness.ts';
import type { JobLock, LockFences } from '../fence.ts';
import type { FleetMetrics } from '../metrics.ts';

export interface PartDeps {
  engine: MultipartEngine;
  redis: Redis;
  metrics: FleetMetrics;
  logger: Logger;
  fences: LockFences;
  fitness?: FitnessHook;
  /** The part buffers, one lent to each part while it is read and sent. */
  buffers: PartBufferPool;
}

type PartQueueJob = Job<PartJobData | HashJobData, PartResult | HashResult>;

/** A part job's data (it has a part number); anything else in this queue is the hash job. */
export function isPartData(d: PartJobData | HashJobData): d is PartJobData {
  return typeof (d as Partial<PartJobData>).partNumber === 'number';
}

/**
 * The field of the upload's job hash that counts the bytes its parts have sent. It lives in
 * the job's own hash, not in a key of its own, so it goes when BullMQ removes the job
 * (retention) and is never left behind (docs/reliability.md, "Redis key families").
 */
export const BYTES_SENT_FIELD = 'jcdsBytesSent';

// Only while the parent exists: HINCRBY or HSET on a removed job would resurrect a stub
// hash that nothing removes. Returns the new total, or -1 when the parent is gone.
const BUMP_PROGRESS = `if redis.call('exists', KEYS[1]) == 0 then return -1 end
local sent = redis.call('hincrby', KEYS[1], ARGV[1], ARGV[2])
local total = tonumber(ARGV[3])
redis.call('hset', KEYS[1], 'progress',
  string.format('{"bytesSent":%d,"total":%d,"phase":"uploading parts"}', math.min(sent, total), total))
return sent`;

/** Adds `bytes` to the parent's running total and publishes it as the parent's progress. */
async function bumpParentProgress(redis: Redis, d: PartJobData, bytes: number): Promise<void> {
  await redis.eval(
    BUMP_PROGRESS,
    1,
    jobKey(QUEUES.upload, d.uploadJobId),
    BYTES_SENT_FIELD,
    String(bytes),
    String(d.size),
  );
}

/**
 * The worker's part buffers: one slot per concurrent part job, each of the part size it
 * plans uploads with, so they hold at most JCDS_PART_CONCURRENCY × JCDS_PART_SIZE bytes.
 */
export function partBuffers(config: Pick<Config, 'partSize' | 'partConcurrency'>): PartBufferPool {
  return new PartBufferPool({ partSize: config.partSize, slots: config.partConcurrency });
}

/**
 * Sends one part. Its checkpoint, the returned ETag and CRC32, reaches the parent through BullMQ's
 * move to completed, which checks the lock's token: a stale worker's result is refused
 * there. The lock is also checked before the bytes go and after they went, so a worker
 * woken past its lock stops at once (LOCK_LOST) instead of sending a part the new owner
 * sends, or counting its bytes in the parent's progress.
 */
export async function processPart(
  deps: PartDeps,
  d: PartJobData,
  lock: Pick<JobLock, 'check'>,
  signal?: AbortSignal,
): Promise<PartResult> {
  await lock.check(`send part ${d.partNumber}`);
  await assertUnchanged(d);
  const body = await readRange(deps.buffers, d, d.offset, d.length);
  let sent;
  try {
    await assertUnchanged(d);
    sent = await deps.engine.sendPart(
      d,
      { partNumber: d.partNumber, body, what: d.fileName },
      signal,
    );
  } finally {
    // The SDK is done with the body once sendPart settles: its retries run inside send(),
    // and smithy's node-http-handler settles a request only after its body was written.
    deps.buffers.give(body);
  }
  await lock.check(`record part ${d.partNumber}`);
  deps.metrics.bytesUploaded(d.length);
  await bumpParentProgress(deps.redis, d, d.length).catch(() => undefined);
  return { partNumber: d.partNumber, size: d.length, ...sent };
}

export async function processHash(
  d: HashJobData,
  lock: Pick<JobLock, 'check'>,
  signal?: AbortSignal,
): Promise<HashResult> {
  const h = await hashIdentified(d, signal);
  await assertUnchanged(d);
  if (h.bytes !== d.size)
    throw new AppError(
      'FILE_CHANGED',
      `${d.path} changed while it was hashed (${h.bytes} of ${d.size} bytes).`,
    );
  // Its result is fenced by BullMQ's move; a stale run stops here, saying so.
  await lock.check('record the hash');
  return { kind: 'hash', sha256: h.sha256 };
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
      run: (job: PartQueueJob, { signal, lock }) =>
        isPartData(job.data)
          ? processPart(deps, job.data, lock, signal)
          : processHash(job.data, lock, signal),
    },
    deps,
  );
}
