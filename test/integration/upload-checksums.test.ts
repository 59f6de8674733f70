/**
 * Per-part integrity in the whole fleet (issue 14): a worker process, redis-server and the
 * simulator. Each part goes with an x-amz-checksum-crc32 that the simulator's S3 checks
 * as real S3 does, and its CRC32 is checkpointed with its ETag.
 * - A part whose bytes are corrupted on the way (the simulator's `corruptPartNumbers`
 *   fault flips a byte after the worker computed the CRC32) is refused with BadDigest:
 *   the upload fails and nothing is published; retried once the fault is gone, it resumes
 *   and publishes the right bytes.
 * - An upload begun by the previous version (its multipart upload created without a
 *   checksum algorithm, a checkpoint without `checksumAlgorithm`) still completes: its
 *   parts go with Content-MD5 and Complete lists ETags only.
 */
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import type { MultipartState, PartResult, UploadJobData } from '../../shared/queues/jobs.ts';
import { partJobId } from '../../shared/queues/names.ts';
import { MiB } from '../../shared/units.ts';
import { makeFile } from '../helpers/fleet.ts';
import {
  expectNothingHalfDone,
  expectPublished,
  useHarness,
  waitForJobSettled,
  waitUntil,
} from '../helpers/faults.ts';

const h = useHarness({ perTest: true });
const uploads = () => h.fleet.queue('upload');
const parts = () => h.fleet.queue('upload-part');
const sim = () => h.fleet.sim.control;

/** The part results the upload checkpointed (its processed children), by part number. */
async function checkpointed(job: Job): Promise<PartResult[]> {
  const values = Object.values(await job.getChildrenValues<PartResult>());
  return values.filter(v => v && 'partNumber' in v).sort((a, b) => a.partNumber - b.partNumber);
}

async function partQueueIdle(): Promise<void> {
  await waitUntil(
    async () => {
      const counts = await parts().getJobCounts('wait', 'delayed', 'active', 'prioritized');
      return Object.values(counts).every(n => n === 0);
    },
    'the part queue to be idle',
    30_000,
  );
}

describe('per-part CRC32 in the fleet', () => {
  it('a part corrupted in flight is refused (BadDigest) and nothing is published; the retry publishes', async () => {
    await h.fleet.startWorker({ JCDS_PART_ATTEMPTS: '2' });
    await sim().setFaults({ corruptPartNumbers: [2] });
    const file = await makeFile(h.fleet.dir, 'Corrupted In Flight.pkg', 12 * MiB); // 3 parts
    const { jobId } = await h.producer.upload({ path: file.path });
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/UploadPart 2 of Corrupted In Flight\.pkg/);
    expect(job.failedReason).toMatch(/BadDigest/);
    expect(await h.jamf.findPackageByFileName('Corrupted In Flight.pkg')).toBeUndefined();
    expect((await h.jamf.listJcdsFiles()).map(f => f.fileName)).not.toContain(
      'Corrupted In Flight.pkg',
    );
    expect((await sim().counters()).uploadPartByNumber['2']).toBeGreaterThanOrEqual(2);
    const mp = (job.data as { multipart?: MultipartState }).multipart;
    expect(mp?.checksumAlgorithm).toBe('CRC32');

    await partQueueIdle();
    await sim().clearFaults();
    await job.retry('failed', { resetAttemptsMade: true });
    const resumed = await waitForJobSettled(uploads(), jobId, 60_000);
    await expectPublished(h, resumed, file, 12 * MiB);
    // Each part's CRC32 was checkpointed beside its ETag.
    const done = await checkpointed(resumed);
    expect(done.map(p => p.partNumber)).toEqual([1, 2, 3]);
    for (const p of done) expect(p.checksumCRC32).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    await expectNothingHalfDone(h);
  });

  it('an upload begun by the previous version (no checksum algorithm) completes with Content-MD5 parts', async () => {
    const { fleet } = h;
    await fleet.startWorker({ JCDS_PART_ATTEMPTS: '1' });
    // Every part fails, so the upload stops at `complete` with its multipart upload kept.
    await sim().setFaults({ failPartNumbers: [1, 2, 3] });
    const file = await makeFile(fleet.dir, 'Begun Before.pkg', 12 * MiB);
    const { jobId } = await h.producer.upload({ path: file.path });
    const failed = await waitForJobSettled(uploads(), jobId, 60_000);
    expect(await failed.getState()).toBe('failed');
    await partQueueIdle();
    const mp = (failed.data as UploadJobData & { multipart: MultipartState }).multipart;
    expect(mp.checksumAlgorithm).toBe('CRC32');

    // Make it what the previous version left: a multipart upload created without a checksum
    // algorithm (Content-MD5 parts), a checkpoint without `checksumAlgorithm`, no part done.
    {
      // Credentials for the bucket, as the previous version had for this upload.
      const c = await h.jamf.createJcdsFile();
      const s3 = new S3Client({
        endpoint: fleet.sim.info.s3Endpoint,
        forcePathStyle: true,
        region: mp.region,
        credentials: {
          accessKeyId: c.accessKeyID,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
        },
        requestChecksumCalculation: 'WHEN_REQUIRED',
      });
      const legacy = await s3.send(
        new CreateMultipartUploadCommand({
          Bucket: mp.bucket,
          Key: mp.key,
          ContentType: 'application/octet-stream',
        }),
      );
      expect(legacy.ChecksumAlgorithm).toBeUndefined();
      await s3.send(
        new AbortMultipartUploadCommand({ Bucket: mp.bucket, Key: mp.key, UploadId: mp.uploadId }),
      );
      s3.destroy();
      const old: MultipartState = { ...mp, uploadId: legacy.UploadId ?? '' };
      delete old.checksumAlgorithm;
      await failed.updateData({ ...failed.data, multipart: old } as UploadJobData);
      for (const n of [1, 2, 3]) await (await Job.fromId(parts(), partJobId(jobId, n)))?.remove();
    }

    await sim().clearFaults();
    await failed.retry('failed', { resetAttemptsMade: true });
    const resumed = await waitForJobSettled(uploads(), jobId, 60_000);
    await expectPublished(h, resumed, file, 12 * MiB);
    // Sent as the previous version sent them: Content-MD5, no CRC32 checkpointed.
    const done = await checkpointed(resumed);
    expect(done.map(p => [p.partNumber, p.checksumCRC32])).toEqual([
      [1, undefined],
      [2, undefined],
      [3, undefined],
    ]);
    await expectNothingHalfDone(h);
  });
});
