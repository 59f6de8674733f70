/**
 * The upload fleet when things go wrong: credentials that expire mid-upload, a worker
 * SIGKILLed mid-upload, a part that fails for good, a file changed mid-upload, and a
 * Jamf Pro without the JCDS v1 endpoints. Real processes throughout.
 */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { JamfClient } from '../../shared/jamf/client.ts';
import { MiB } from '../../shared/units.ts';
import { Producer } from '../../producer/producer.ts';
import type { UploadResult } from '../../shared/queues/jobs.ts';
import { makeFile, startFleet, waitForJob, type Fleet } from '../helpers/fleet.ts';

let fleet: Fleet | undefined;
let producer: Producer | undefined;
let jamf: JamfClient | undefined;

async function setup(simArgs: string[] = [], env: Record<string, string> = {}): Promise<Fleet> {
  fleet = await startFleet({
    simArgs,
    env: {
      JCDS_PART_SIZE: '8MiB',
      JCDS_SPLIT_THRESHOLD: '16MiB',
      JCDS_RETRY_DELAY: '100',
      JCDS_PART_CONCURRENCY: '4',
      ...env,
    },
  });
  producer = await Producer.connect({ redisUrl: fleet.redis.url });
  jamf = new JamfClient({
    baseUrl: fleet.sim.info.jamfUrl,
    auth: { kind: 'oauth', id: fleet.sim.info.clientId, secret: fleet.sim.info.clientSecret },
  });
  return fleet;
}

afterEach(async () => {
  await producer?.close();
  await jamf?.close();
  await fleet?.close();
  fleet = undefined;
  producer = undefined;
  jamf = undefined;
});

function sumParts(byNumber: Record<string, number>): number {
  return Object.values(byNumber).reduce((a, b) => a + b, 0);
}

describe('upload recovery', () => {
  it('completes when the S3 credentials (5 s TTL) expire several times mid-upload; renewals are few', async () => {
    const f = await setup(['--credential-ttl', '5']);
    await f.startWorker();
    // 3 MiB/s per request, 4 parts at a time: 160 MiB takes ~13 s, well over two TTLs.
    await f.sim.control.setFaults({ s3BytesPerSecond: 3 * MiB });
    const file = await makeFile(f.dir, 'Slow Renewal.pkg', 160 * MiB);
    const started = Date.now();
    const { jobId } = await producer!.upload({ path: file.path });
    const job = await waitForJob(f.queue('upload'), jobId, 150_000);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThan(10_000);
    const c = await f.sim.control.counters();
    expect(c.credentialRenewals).toBeGreaterThanOrEqual(1);
    expect(c.credentialRenewals).toBeLessThan(20 / 2); // far fewer than the 20 parts
    const pkg = await jamf!.getPackage((job.returnvalue as UploadResult).packageId);
    expect(pkg.hashValue).toBe(file.sha3_512);
  });

  it('a worker SIGKILLed mid-upload: a second worker finishes; extra UploadParts ≤ parts in flight', async () => {
    const f = await setup([], { JCDS_PART_CONCURRENCY: '4' });
    const first = await f.startWorker();
    await f.sim.control.setFaults({ s3BytesPerSecond: 16 * MiB });
    const file = await makeFile(f.dir, 'Killed Midway.pkg', 160 * MiB);
    const { jobId } = await producer!.upload({ path: file.path });
    // Wait until some parts are done, then kill the worker with parts in flight.
    for (;;) {
      const c = await f.sim.control.counters();
      if ((c.calls['UploadPart'] ?? 0) >= 8) break;
      await sleep(100);
    }
    await first.kill('SIGKILL');
    await f.sim.control.clearFaults();
    await f.startWorker();
    const job = await waitForJob(f.queue('upload'), jobId, 120_000);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    const c = await f.sim.control.counters();
    const extra = sumParts(c.uploadPartByNumber) - 20;
    console.log(
      `kill test: ${extra} UploadPart calls beyond one per part (4 parts in flight per worker)`,
    );
    expect(extra).toBeGreaterThanOrEqual(0);
    expect(extra).toBeLessThanOrEqual(4);
    const pkg = await jamf!.getPackage((job.returnvalue as UploadResult).packageId);
    expect(pkg.hashValue).toBe(file.sha3_512);
    expect(await f.sim.control.listMultipartUploads()).toEqual([]);
  });

  it('a part failing for good fails the job with the reason; no package; the multipart upload is kept for a retry', async () => {
    const f = await setup([], { JCDS_PART_ATTEMPTS: '3' });
    await f.startWorker();
    await f.sim.control.setFaults({ failPartNumbers: [3] });
    const file = await makeFile(f.dir, 'Broken Part.pkg', 40 * MiB);
    const { jobId } = await producer!.upload({ path: file.path });
    const job = await waitForJob(f.queue('upload'), jobId, 60_000);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/UploadPart 3 of Broken Part\.pkg/);
    expect(await jamf!.findPackageByFileName('Broken Part.pkg')).toBeUndefined();
    // Kept, with the parts S3 holds, so that a retry resumes (test/integration/retry.test.ts).
    expect(await f.sim.control.listMultipartUploads()).toHaveLength(1);
    expect(job.data).toMatchObject({ step: 'complete', resume: true });
    // Nothing goes on being sent for it.
    await sleep(500);
    const counts = await f.queue('upload-part').getJobCounts('waiting', 'delayed', 'prioritized');
    expect(
      Object.values(counts).every(n => n === 0),
      JSON.stringify(counts),
    ).toBe(true);
  });

  it('a file modified mid-upload fails with FILE_CHANGED and nothing is published', async () => {
    const f = await setup();
    await f.startWorker();
    await f.sim.control.setFaults({ s3BytesPerSecond: 8 * MiB });
    const file = await makeFile(f.dir, 'Moving Target.pkg', 64 * MiB);
    const { jobId } = await producer!.upload({ path: file.path });
    for (;;) {
      const c = await f.sim.control.counters();
      if ((c.calls['UploadPart'] ?? 0) >= 2) break;
      await sleep(50);
    }
    appendFileSync(file.path, 'more bytes');
    await f.sim.control.clearFaults();
    const job = await waitForJob(f.queue('upload'), jobId, 60_000);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/FILE_CHANGED/);
    expect(await jamf!.findPackageByFileName('Moving Target.pkg')).toBeUndefined();
    expect(await f.sim.control.listMultipartUploads()).toEqual([]);
  });

  it('without the JCDS v1 endpoints (--no-jcds) the package-upload transport is used and verified', async () => {
    const f = await setup(['--no-jcds'], { JCDS_TRANSPORT: 'auto' });
    await f.startWorker();
    const file = await makeFile(f.dir, 'Modern Path.pkg', 30 * MiB);
    const { jobId } = await producer!.upload({ path: file.path });
    const job = await waitForJob(f.queue('upload'), jobId, 60_000);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    const result = job.returnvalue as UploadResult;
    expect(result.transport).toBe('package-upload');
    const pkg = await jamf!.getPackage(result.packageId);
    expect(pkg.hashValue).toBe(file.sha3_512);
    expect(pkg.md5).toBe(file.md5);
    const c = await f.sim.control.counters();
    expect(c.calls['POST /api/v1/packages/{id}/upload']).toBe(1);
  });
});
