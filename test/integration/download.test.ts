/**
 * Downloads end to end: a spawned redis-server, the simulator process and worker
 * processes, over real HTTP with real files. A 300 MiB file is published through the
 * fleet first, then downloaded (timed), downloaded again by a worker that is SIGKILLed
 * mid-way (resumed by another worker), and again with presigned URLs that expire.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import { RANGE_CONCURRENCY, RANGE_SIZE, bytesIn } from '../../shared/download/ranges.ts';
import { JamfClient } from '../../shared/jamf/client.ts';
import { createS3Client } from '../../shared/s3/client.ts';
import type { DownloadJobData, DownloadResult, UploadResult } from '../../shared/queues/jobs.ts';
import { MiB } from '../../shared/units.ts';
import {
  makeFile,
  startFleet,
  waitForJob,
  type Fleet,
  type WorkerProcess,
} from '../helpers/fleet.ts';

const BIG = 300 * MiB;
let fleet: Fleet;
let producer: Producer;
let worker1: WorkerProcess;
let big: { path: string; md5: string; sha3_512: string; sha256: string };
let out: string;

async function md5Of(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB }))
    h.update(chunk as Buffer);
  return h.digest('hex');
}

async function publish(path: string): Promise<UploadResult> {
  const { jobId } = await producer.upload({ path, ifExists: 'replace' });
  const job = await waitForJob(fleet.queue('upload'), jobId, 170_000);
  expect(job.failedReason, job.failedReason).toBeUndefined();
  return job.returnvalue as UploadResult;
}

async function download(
  fileName: string,
  dest: string,
  overwrite = false,
): Promise<{ job: Job; result: DownloadResult }> {
  const jobId = await producer.download({ fileName, dest, overwrite });
  const job = await waitForJob(fleet.queue('download'), jobId, 170_000);
  return { job, result: job.returnvalue as DownloadResult };
}

beforeAll(async () => {
  fleet = await startFleet({ env: { JCDS_TRANSPORT: 's3' } });
  worker1 = await fleet.startWorker();
  producer = await Producer.connect({ redisUrl: fleet.redis.url });
  out = join(fleet.dir, 'out');
  mkdirSync(out);
  big = await makeFile(fleet.dir, 'Big Download.pkg', BIG);
  await publish(big.path);
}, 180_000);

afterAll(async () => {
  await producer?.close();
  await fleet?.close();
});

describe('download', () => {
  it('downloads 300 MiB in parallel ranges, verified by the SHA-256 Jamf computed for the package', async () => {
    await fleet.sim.control.resetCounters();
    const t0 = performance.now();
    const { job, result } = await download('Big Download.pkg', out);
    const seconds = (performance.now() - t0) / 1000;
    expect(job.failedReason, job.failedReason).toBeUndefined();
    const dest = join(out, 'Big Download.pkg');
    expect(result).toMatchObject({
      path: dest,
      size: BIG,
      // Verified by SHA-256 alone; MD5 and SHA3-512 are the listing's, which the record's equal.
      sha256: big.sha256,
      md5: big.md5,
      sha3_512: big.sha3_512,
      verified: true,
      verifiedBy: 'sha256',
      bytesFetched: BIG,
    });
    expect(await md5Of(dest)).toBe(big.md5);
    expect(readdirSync(out).filter(n => n.endsWith('.partial'))).toEqual([]);
    const c = await fleet.sim.control.counters();
    expect(c.s3BytesServed).toBe(BIG);
    // The presigned URL is a secret: not in the job data, the job logs or the worker logs.
    const { logs } = await fleet.queue('download').getJobLogs(String(job.id));
    expect(logs.join('\n')).toMatch(
      /verifying by SHA-256, computed by Jamf for package \S+ \(its hashes match the JCDS listing\)/,
    );
    expect(logs.join('\n')).toMatch(
      /verified \(SHA-256 equals the one Jamf computed for the package\)/,
    );
    const text = JSON.stringify(job.data) + logs.join('\n') + worker1.logs();
    expect(text).not.toMatch(/X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token/i);
    const mbps = BIG / 1e6 / seconds;
    console.log(
      `300 MiB download: ${seconds.toFixed(2)} s end to end (enqueue → verified), ${mbps.toFixed(0)} MB/s; in-job ${(result.durationMs / 1000).toFixed(2)} s, ${(BIG / 1e6 / (result.durationMs / 1000)).toFixed(0)} MB/s (fetch ${result.fetchMs} ms, hashes ready ${result.verifyTailMs} ms after the last byte)`,
    );
  });

  it('a worker SIGKILLed mid-download: another worker resumes and fetches only what was missing', async () => {
    await fleet.sim.control.resetCounters();
    // 8 MiB/s per request, RANGE_CONCURRENCY ranges in flight, until 3 ranges are
    // checkpointed; then a crawl while worker2 starts (seconds on a busy machine), so the
    // kill lands mid-download.
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 8 * MiB });
    const jobId = await producer.download({
      fileName: 'Big Download.pkg',
      dest: join(out, 'resumed.pkg'),
    });
    const queue = fleet.queue('download');
    const deadline = Date.now() + 60_000;
    let done: number;
    for (;;) {
      const job = await Job.fromId<DownloadJobData>(queue, jobId);
      done = bytesIn(job?.data.doneRanges ?? []);
      if (done >= 3 * RANGE_SIZE) break;
      if (Date.now() > deadline)
        throw new Error(`the download did not checkpoint 3 ranges within 60 s (${done} bytes)`);
      await sleep(100);
    }
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 64 * 1024 });
    const worker2 = await fleet.startWorker();
    done = bytesIn((await Job.fromId<DownloadJobData>(queue, jobId))?.data.doneRanges ?? []);
    await worker1.kill('SIGKILL');
    await fleet.sim.control.clearFaults();
    const job = await waitForJob(queue, jobId, 120_000);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    const result = job.returnvalue as DownloadResult;
    expect(result.resumedBytes).toBeGreaterThanOrEqual(done);
    expect(result.md5).toBe(big.md5);
    expect(await md5Of(join(out, 'resumed.pkg'))).toBe(big.md5);
    expect(worker2.logs()).toMatch(/download done/);
    const served = (await fleet.sim.control.counters()).s3BytesServed;
    const twice = served - BIG;
    console.log(
      `kill test: checkpointed ${(done / MiB).toFixed(0)} MiB before the kill; resumed ${(result.resumedBytes / MiB).toFixed(0)} MiB; bytes fetched twice ${twice} (${(twice / MiB).toFixed(1)} MiB), bound ${RANGE_CONCURRENCY} x ${RANGE_SIZE / MiB} MiB`,
    );
    expect(twice).toBeGreaterThanOrEqual(0);
    expect(twice).toBeLessThanOrEqual(RANGE_CONCURRENCY * RANGE_SIZE);
    worker1 = worker2;
  });

  it('presigned URLs that expire mid-download are fetched again from Jamf', async () => {
    await fleet.sim.control.resetCounters();
    await fleet.sim.control.setFaults({ presignTtlSeconds: 1, s3BytesPerSecond: 30 * MiB });
    try {
      const { job, result } = await download('Big Download.pkg', join(out, 'expiring.pkg'));
      expect(job.failedReason, job.failedReason).toBeUndefined();
      expect(result.md5).toBe(big.md5);
      expect(result.urlRefreshes).toBeGreaterThanOrEqual(1);
      const c = await fleet.sim.control.counters();
      expect(c.calls['GET /api/v1/jcds/files/{fileName}']).toBeGreaterThanOrEqual(2);
      const { logs } = await fleet.queue('download').getJobLogs(String(job.id));
      expect(logs.join('\n')).toMatch(/presigned URL expired or was refused \(403\)/);
    } finally {
      await fleet.sim.control.clearFaults();
    }
  });

  it('a corrupted stored object fails verification and no destination file appears', async () => {
    const f = await makeFile(fleet.dir, 'Damaged.pkg', 3 * MiB + 5);
    await publish(f.path);
    await fleet.sim.control.corrupt('Damaged.pkg');
    const { job } = await download('Damaged.pkg', out);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(
      /^\[VERIFY_FAILED\] The downloaded Damaged.pkg does not match what Jamf lists \(MD5 /,
    );
    // The record's SHA-256 differed first; the listing's MD5 then confirmed the damage.
    const { logs } = await fleet.queue('download').getJobLogs(String(job.id));
    expect(logs.join('\n')).toMatch(
      /SHA-256 \w+… differs from the package record's \w+…: checking the hashes of the JCDS listing instead/,
    );
    expect(job.attemptsMade).toBe(1);
    expect(existsSync(join(out, 'Damaged.pkg'))).toBe(false);
    expect(readdirSync(out).filter(n => n.endsWith('.partial'))).toEqual([]);
  });

  it('refuses unsafe names, existing destinations and missing folders before enqueueing', async () => {
    const before = await fleet.queue('download').getJobCounts();
    for (const name of ['../../etc/passwd', '/etc/passwd', 'a/b.pkg', 'evil\0.pkg', '..']) {
      await expect(producer.download({ fileName: name, dest: out })).rejects.toMatchObject({
        code: 'UNSAFE_FILE_NAME',
      });
    }
    await expect(
      producer.download({ fileName: 'Big Download.pkg', dest: out }),
    ).rejects.toMatchObject({
      code: 'DESTINATION_EXISTS',
      message: expect.stringMatching(
        /already exists: remove it, choose another destination, or pass --overwrite/,
      ),
    });
    await expect(
      producer.download({
        fileName: 'Big Download.pkg',
        dest: join(out, 'no such folder', 'x.pkg'),
      }),
    ).rejects.toMatchObject({
      code: 'DESTINATION_INVALID',
      message: expect.stringMatching(/does not exist: create it first/),
    });
    expect(await fleet.queue('download').getJobCounts()).toEqual(before);
  });

  it('overwrite replaces an existing file; an unknown JCDS file name fails with the fix', async () => {
    const f = await makeFile(fleet.dir, 'Small.dmg', 1 * MiB);
    await publish(f.path);
    const dest = join(out, 'Small.dmg');
    await makeFile(out, 'Small.dmg', 1000);
    const { job, result } = await download('Small.dmg', dest, true);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    expect(result.md5).toBe(f.md5);
    expect(await md5Of(dest)).toBe(f.md5);

    const missing = await download('Not There.pkg', out);
    expect(missing.job.failedReason).toMatch(
      /^\[JAMF_NOT_FOUND\] JCDS holds no file named "Not There.pkg": check the name/,
    );
  });

  it('a full disk fails with DISK_FULL and keeps the partial file for a later resume', async () => {
    // A real file system of 256 KiB (a tmpfs: mounting it needs root, as CI runs) for a
    // file of 1 MiB: the writes answer ENOSPC.
    const small = join(out, 'small-disk');
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]);
    try {
      const dest = join(small, 'Full Disk.dmg');
      const { job } = await download('Small.dmg', dest);
      expect(await job.getState()).toBe('failed');
      expect(job.failedReason).toMatch(
        /^\[DISK_FULL\] The disk holding .*Full Disk.dmg is full \(ENOSPC\).*free at least .* and retry the job; .*\.partial is kept/,
      );
      expect(job.attemptsMade).toBe(1);
      const kept = (job.data as DownloadJobData).partial;
      expect(readdirSync(small)).toEqual([kept?.name]);
      expect(existsSync(dest)).toBe(false);
    } finally {
      execFileSync('umount', ['-l', small]);
    }
  });
});

describe('download verification: the cheapest hash Jamf computed, else the listing', () => {
  let jamf: JamfClient;

  beforeAll(() => {
    jamf = new JamfClient({
      baseUrl: fleet.sim.info.jamfUrl,
      auth: { kind: 'oauth', id: fleet.sim.info.clientId, secret: fleet.sim.info.clientSecret },
    });
  });

  afterAll(async () => {
    await jamf?.close();
  });

  /** Stores a JCDS file straight into S3 (JCDS credentials): no package record is made. */
  async function putJcdsObject(fileName: string, path: string): Promise<void> {
    const c = await jamf.createJcdsFile();
    const s3 = createS3Client({
      region: c.region,
      endpoint: fleet.sim.info.s3Endpoint,
      credentials: {
        accessKeyId: c.accessKeyID,
        secretAccessKey: c.secretAccessKey,
        sessionToken: c.sessionToken,
      },
    });
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: c.bucketName,
          Key: `${c.path}${fileName}`,
          Body: readFileSync(path),
        }),
      );
    } finally {
      s3.destroy();
    }
  }

  async function logsOf(job: Job): Promise<string> {
    return (await fleet.queue('download').getJobLogs(String(job.id))).logs.join('\n');
  }

  it('a JCDS file without a package record is verified by the MD5 and SHA3-512 of the listing', async () => {
    const f = await makeFile(fleet.dir, 'No Record.pkg', 5 * MiB + 17);
    await putJcdsObject('No Record.pkg', f.path);
    expect(await jamf.findPackageByFileName('No Record.pkg')).toBeUndefined();
    const { job, result } = await download('No Record.pkg', out);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    expect(result).toMatchObject({
      md5: f.md5,
      sha3_512: f.sha3_512,
      verified: true,
      verifiedBy: 'listing',
    });
    expect(result.sha256).toBeUndefined();
    expect(await md5Of(join(out, 'No Record.pkg'))).toBe(f.md5);
    expect(await logsOf(job)).toMatch(
      /verifying by MD5 and SHA3-512 of the JCDS listing: no package record has this file name/,
    );
  });

  it('a record that describes another upload of the name (hashes unlike the listing) is not trusted: the listing is', async () => {
    const v1 = await makeFile(fleet.dir, 'Two Versions.pkg', 2 * MiB);
    await publish(v1.path);
    // A newer object of that name, not yet processed into the record (Jamf's processing is
    // asynchronous): the record still shows v1's hashes, the listing v2's.
    await fleet.sim.control.setFaults({ processingDelayMs: 600_000 });
    try {
      const v2 = await makeFile(fleet.dir, 'Two Versions v2.bin', 2 * MiB);
      await putJcdsObject('Two Versions.pkg', v2.path);
      const record = await jamf.findPackageByFileName('Two Versions.pkg');
      expect(record?.sha256).toBe(v1.sha256);
      const dest = join(out, 'Two Versions.pkg');
      const { job, result } = await download('Two Versions.pkg', dest);
      expect(job.failedReason, job.failedReason).toBeUndefined();
      expect(result).toMatchObject({ md5: v2.md5, verified: true, verifiedBy: 'listing' });
      expect(await md5Of(dest)).toBe(v2.md5);
      expect(await logsOf(job)).toMatch(
        new RegExp(
          `verifying by MD5 and SHA3-512 of the JCDS listing: package ${record!.id}'s md5 and sha3512 differ from the listing's \\(another upload of that name\\)`,
        ),
      );
    } finally {
      await fleet.sim.control.clearFaults();
    }
  });

  it('records without sha256 (a tenant that does not fill it): the listing is checked', async () => {
    const f = await makeFile(fleet.dir, 'No Sha256.pkg', 3 * MiB);
    await publish(f.path);
    await fleet.sim.control.setSettings({ packageSha256: false });
    try {
      const record = await jamf.findPackageByFileName('No Sha256.pkg');
      expect(record?.sha256 ?? undefined).toBeUndefined();
      const { job, result } = await download('No Sha256.pkg', out);
      expect(job.failedReason, job.failedReason).toBeUndefined();
      expect(result).toMatchObject({
        md5: f.md5,
        sha3_512: f.sha3_512,
        verified: true,
        verifiedBy: 'listing',
      });
      expect(await logsOf(job)).toMatch(
        new RegExp(`of the JCDS listing: package ${record!.id} shows no sha256`),
      );
    } finally {
      await fleet.sim.control.setSettings({ packageSha256: true });
    }
  });
});
