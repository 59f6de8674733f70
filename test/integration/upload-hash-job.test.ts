/**
 * The upload's hash job against a real redis-server: it is not a child of the upload (the
 * object is completed without waiting for it), so `finalize` waits for it with awaitHash.
 * A real BullMQ Worker runs the part queue's processor on real files; no simulator is needed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { systemClock } from '../../shared/clock.ts';
import { AppError } from '../../shared/errors.ts';
import { identityOf } from '../../shared/file-identity.ts';
import { createLogger } from '../../shared/logger.ts';
import { hashJobId, QUEUE_PREFIX } from '../../shared/queues/names.ts';
import { MultipartEngine } from '../../shared/upload/multipart.ts';
import { UploadPartJobs, type UploadRef } from '../../shared/upload/part-queue.ts';
import { S3Sessions } from '../../shared/upload/s3-sessions.ts';
import { missingVault } from '../../shared/vault.ts';
import { JobFences } from '../../worker/fence.ts';
import { NO_METRICS } from '../../worker/metrics.ts';
import { partBuffers, partProcessor } from '../../worker/processors/upload-part.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

let server: RedisServer;
let partQueue: Queue;
let worker: Worker;
let redis: Redis;
const dir = mkdtempSync(join(tmpdir(), 'jcds-hashjob-'));
const QUEUE = 'hash-job-test';

beforeAll(async () => {
  server = await startRedis();
  const connection = { url: server.url };
  partQueue = new Queue(QUEUE, { connection, prefix: QUEUE_PREFIX });
  redis = new Redis(server.url);
  const logger = createLogger({ level: 'silent' });
  // The part processor's collaborators: the hash job uses none of the S3 ones.
  const engine = new MultipartEngine(new S3Sessions({ vault: missingVault() }), logger);
  worker = new Worker(
    QUEUE,
    partProcessor(
      {
        engine,
        redis,
        metrics: NO_METRICS,
        logger,
        fences: new JobFences(redis),
        buffers: partBuffers({ partSize: 5 * 2 ** 20, partConcurrency: 2 }),
      },
      partQueue,
    ),
    {
      connection,
      prefix: QUEUE_PREFIX,
      concurrency: 2,
    },
  );
});
afterAll(async () => {
  await worker?.close();
  await partQueue?.close();
  redis?.disconnect();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The upload's part queue jobs, as the upload processor's `finalize` waits on them. */
function awaitHash(job: UploadRef, signal?: AbortSignal) {
  return new UploadPartJobs(partQueue, { attempts: 1, delayMs: 100 }, systemClock).awaitHash(
    job,
    signal,
  );
}

let serial = 0;
function uploadJob(path: string): UploadRef & { id: string } {
  const st = statSync(path);
  const id = `u${++serial}`;
  return {
    id,
    jobId: id,
    path,
    fileName: 'Hash Job.pkg',
    ...identityOf(st, statSync(path, { bigint: true })),
  };
}

describe('the upload hash job', () => {
  it('awaitHash adds a missing hash job and returns the hashes a worker computed', async () => {
    const path = join(dir, 'a.pkg');
    const bytes = randomBytes(3 * 1024 * 1024);
    writeFileSync(path, bytes);
    const job = uploadJob(path);
    expect(await Job.fromId(partQueue, hashJobId(String(job.id)))).toBeUndefined();
    const hashes = await awaitHash(job);
    // SHA-256 alone: what the upload compares with the record's sha256.
    expect(hashes).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex') });
    const hashJob = await Job.fromId(partQueue, hashJobId(String(job.id)));
    expect(await hashJob?.getState()).toBe('completed');
    expect(hashJob?.returnvalue).toEqual({ kind: 'hash', ...hashes });
  });

  it('a hash job completed by an earlier version (SHA3-512 and MD5, no SHA-256) is run again', async () => {
    const path = join(dir, 'old.pkg');
    const bytes = randomBytes(256 * 1024);
    writeFileSync(path, bytes);
    const job = uploadJob(path);
    await worker.pause();
    const old = new Worker(
      QUEUE,
      async () => ({ kind: 'hash', sha3_512: 'a'.repeat(128), md5: 'b'.repeat(32) }),
      { connection: { url: server.url }, prefix: QUEUE_PREFIX, autorun: false },
    );
    try {
      await new UploadPartJobs(partQueue, { attempts: 1, delayMs: 100 }, systemClock).addHash(job);
      const done = new Promise(resolve => old.once('completed', resolve));
      void old.run();
      await done;
      await old.close();
      expect(await (await Job.fromId(partQueue, hashJobId(String(job.id))))?.getState()).toBe(
        'completed',
      );
    } finally {
      await old.close();
      await worker.resume();
    }
    const hashes = await awaitHash(job);
    expect(hashes).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex') });
  });

  it('a hash job that failed for good fails awaitHash with its code and is removed for a retry', async () => {
    // The file is gone after it was enqueued: the hash job fails with FILE_CHANGED.
    const path = join(dir, 'gone.pkg');
    writeFileSync(path, 'soon gone');
    const job = uploadJob(path);
    rmSync(path);
    const err = await awaitHash(job).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('FILE_CHANGED');
    expect((err as AppError).message).toContain('Hash Job.pkg');
    // Removed, so that the upload's next attempt hashes again instead of failing at once.
    expect(await Job.fromId(partQueue, hashJobId(String(job.id)))).toBeUndefined();
  });

  it('awaitHash stops waiting when its signal aborts', async () => {
    const path = join(dir, 'slow.pkg');
    writeFileSync(path, 'x');
    const job = uploadJob(path);
    await worker.pause();
    try {
      const ac = new AbortController();
      const waiting = awaitHash(job, ac.signal);
      setTimeout(() => ac.abort(new Error('lock lost')), 300);
      await expect(waiting).rejects.toThrow('lock lost');
      expect(await (await Job.fromId(partQueue, hashJobId(String(job.id))))?.getState()).toBe(
        'waiting',
      );
    } finally {
      await worker.resume();
    }
  });
});
