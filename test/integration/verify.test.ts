/**
 * "Verified" means Jamf verified it (jamf-wire-2026.md section 2), against a simulator that
 * behaves like Jamf Pro 11.25–11.33: it stores client-sent hash fields unchecked and shows
 * them back, computes its own hashes, size and READY only after processing the stored file,
 * and can be told to show the transient "new hash, old size" state, to lose the bytes
 * (size "0"), to lose a stored object, or to have no cloud distribution point.
 *
 * Real processes: a spawned redis-server, the simulator, worker processes and the CLI.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import { JamfClient } from '../../shared/jamf/client.ts';
import { PACKAGE_DEFAULTS } from '../../shared/jamf/types.ts';
import type { DownloadResult, UploadResult } from '../../shared/queues/jobs.ts';
import { MiB } from '../../shared/units.ts';
import { METRICS_KEY } from '../../worker/metrics.ts';
import { makeFile, ROOT, startFleet, waitForJob, type Fleet } from '../helpers/fleet.ts';
import { simApi, simToken } from '../helpers/sim.ts';

const HASH_OR_SIZE = ['hashType', 'hashValue', 'md5', 'sha256', 'sha3512', 'size'];

function sha3(path: string): string {
  return createHash('sha3-512').update(readFileSync(path)).digest('hex');
}

function jamfOf(fleet: Fleet): JamfClient {
  return new JamfClient({
    baseUrl: fleet.sim.info.jamfUrl,
    auth: { kind: 'oauth', id: fleet.sim.info.clientId, secret: fleet.sim.info.clientSecret },
  });
}

async function resends(fleet: Fleet): Promise<number> {
  const redis = new Redis(fleet.redis.url);
  try {
    return Number((await redis.hget(METRICS_KEY, 'upload_resends')) ?? 0);
  } finally {
    redis.disconnect();
  }
}

describe('convergence on what Jamf computed', () => {
  let fleet: Fleet;
  let producer: Producer;
  let jamf: JamfClient;

  beforeAll(async () => {
    fleet = await startFleet({
      env: { JCDS_PART_SIZE: '5MiB', JCDS_SPLIT_THRESHOLD: '8MiB', JCDS_TRANSPORT: 'auto' },
    });
    await fleet.startWorker();
    producer = await Producer.connect({ redisUrl: fleet.redis.url });
    jamf = jamfOf(fleet);
  });
  afterAll(async () => {
    await producer?.close();
    await jamf?.close();
    await fleet?.close();
  });

  async function upload(
    path: string,
    opts: { transport?: 's3' | 'package-upload'; ifExists?: 'replace' } = {},
  ) {
    const { jobId } = await producer.upload({ path, ...opts });
    const job = await waitForJob(fleet.queue('upload'), jobId, 120_000);
    return job;
  }

  it('no package create or update carries a hash or size field, on either transport, new and replace', async () => {
    await fleet.sim.control.resetCounters();
    for (const transport of ['s3', 'package-upload'] as const) {
      const v1 = await makeFile(fleet.dir, `No Hash ${transport}.pkg`, 2 * MiB);
      const created = await upload(v1.path, { transport });
      expect(await created.getState(), created.failedReason).toBe('completed');
      const v2 = await makeFile(fleet.dir, `No Hash ${transport}.pkg`, 3 * MiB);
      const replaced = await upload(v2.path, { transport, ifExists: 'replace' });
      expect(await replaced.getState(), replaced.failedReason).toBe('completed');
      expect((replaced.returnvalue as UploadResult).outcome).toBe('replaced');
      const pkg = await jamf.getPackage((replaced.returnvalue as UploadResult).packageId);
      expect(pkg.hashValue).toBe(sha3(v2.path));
      expect(pkg.size).toBe(3 * MiB);
      expect(pkg.cloudTransferStatus).toBe('READY');
    }
    const writes = (await fleet.sim.control.counters()).packageWrites;
    expect(writes.length).toBeGreaterThanOrEqual(2);
    for (const w of writes) for (const f of HASH_OR_SIZE) expect(w.fields).not.toContain(f);
  });

  it('bytes that never land (size "0") are sent again, counted and logged, and the job succeeds', async () => {
    for (const transport of ['s3', 'package-upload'] as const) {
      const before = await resends(fleet);
      await fleet.sim.control.setFaults({ bytesNeverLandCount: 1 });
      const f = await makeFile(fleet.dir, `Never Landed ${transport}.pkg`, 3 * MiB);
      const job = await upload(f.path, { transport });
      await fleet.sim.control.clearFaults();
      expect(await job.getState(), job.failedReason).toBe('completed');
      const pkg = await jamf.getPackage((job.returnvalue as UploadResult).packageId);
      expect(pkg).toMatchObject({ hashValue: sha3(f.path), size: 3 * MiB });
      expect(await resends(fleet)).toBe(before + 1);
      const { logs } = await fleet.queue('upload').getJobLogs(String(job.id));
      expect(logs.join('\n')).toMatch(/never landed.*sending the bytes again \(1 of 5\)/);
    }
  });

  it('a stored object that vanishes is sent again and the record written beside the listing is deleted; the job never completes without it', async () => {
    await fleet.sim.control.resetCounters();
    await fleet.sim.control.setFaults({ vanishObjectCount: 1 });
    const f = await makeFile(fleet.dir, 'Vanished Once.pkg', 12 * MiB);
    const job = await upload(f.path, { transport: 's3' });
    await fleet.sim.control.clearFaults();
    expect(await job.getState(), job.failedReason).toBe('completed');
    const c = await fleet.sim.control.counters();
    expect(c.objectsVanished).toBe(1);
    // A record is written while JCDS's listing is read: the first, for the object that
    // vanished, was deleted again; one record is left, for the object JCDS lists.
    expect(c.calls['POST /api/v1/packages']).toBe(2);
    const records = (await jamf.listPackages({})).filter(p => p.fileName === 'Vanished Once.pkg');
    expect(records).toHaveLength(1);
    expect(String(records[0]!.id)).toBe((job.returnvalue as UploadResult).packageId);
    const listed = (await jamf.listJcdsFiles()).find(x => x.fileName === 'Vanished Once.pkg');
    expect(listed).toMatchObject({ length: 12 * MiB });

    // It keeps vanishing: the job fails, and no record names the file.
    await fleet.sim.control.setFaults({ vanishObjectCount: 100 });
    const g = await makeFile(fleet.dir, 'Vanished Always.pkg', 1 * MiB);
    const failed = await upload(g.path, { transport: 's3' });
    await fleet.sim.control.clearFaults();
    expect(await failed.getState()).toBe('failed');
    expect(failed.failedReason).toMatch(/^\[UPLOAD_INCOMPLETE\] .*JCDS does not list it/);
    expect(await jamf.findPackageByFileName('Vanished Always.pkg')).toBeUndefined();
  });

  it('a replace converges only on the new hash and the new size (not the transient new hash, old size)', async () => {
    const staleSizeMs = 4_000;
    const v1 = await makeFile(fleet.dir, 'Stale Size.pkg', 1 * MiB);
    expect(await (await upload(v1.path)).getState()).toBe('completed');
    await fleet.sim.control.setFaults({ staleSizeMs });
    const v2 = await makeFile(fleet.dir, 'Stale Size.pkg', 2 * MiB);
    const job = await upload(v2.path, { ifExists: 'replace' });
    await fleet.sim.control.clearFaults();
    expect(await job.getState(), job.failedReason).toBe('completed');
    const r = job.returnvalue as UploadResult;
    expect(r.outcome).toBe('replaced');
    // The mechanism: the simulator shows the new hash with the old size for staleSizeMs
    // after it processed the new bytes, which it can only do after they were sent, so a
    // job that waits for the new size cannot end sooner than that after it started.
    expect(r.durationMs).toBeGreaterThanOrEqual(staleSizeMs);
    const pkg = await jamf.getPackage(r.packageId);
    expect(pkg).toMatchObject({ hashValue: sha3(v2.path), size: 2 * MiB });
  });

  it('records without sha256 (the simulator leaves it out): never-landed and the transient old size still hold, on hashValue', async () => {
    await fleet.sim.control.setSettings({ packageSha256: false });
    try {
      for (const transport of ['s3', 'package-upload'] as const) {
        const before = await resends(fleet);
        await fleet.sim.control.setFaults({ bytesNeverLandCount: 1 });
        const f = await makeFile(fleet.dir, `No Sha Never Landed ${transport}.pkg`, 3 * MiB);
        const job = await upload(f.path, { transport });
        await fleet.sim.control.clearFaults();
        expect(await job.getState(), job.failedReason).toBe('completed');
        const r = job.returnvalue as UploadResult;
        expect(r).toMatchObject({ sha3_512: sha3(f.path) });
        const pkg = await jamf.getPackage(r.packageId);
        expect(pkg).toMatchObject({ hashValue: sha3(f.path), size: 3 * MiB });
        expect(pkg.sha256 ?? undefined).toBeUndefined();
        expect(await resends(fleet)).toBe(before + 1);
      }
      const staleSizeMs = 3_000;
      const v1 = await makeFile(fleet.dir, 'No Sha Stale Size.pkg', 1 * MiB);
      expect(await (await upload(v1.path)).getState()).toBe('completed');
      await fleet.sim.control.setFaults({ staleSizeMs });
      const v2 = await makeFile(fleet.dir, 'No Sha Stale Size.pkg', 2 * MiB);
      const job = await upload(v2.path, { ifExists: 'replace' });
      await fleet.sim.control.clearFaults();
      expect(await job.getState(), job.failedReason).toBe('completed');
      const r = job.returnvalue as UploadResult;
      expect(r).toMatchObject({ outcome: 'replaced', sha3_512: sha3(v2.path) });
      expect(r.durationMs).toBeGreaterThanOrEqual(staleSizeMs);
    } finally {
      await fleet.sim.control.clearFaults();
      await fleet.sim.control.setSettings({ packageSha256: true });
    }
  });

  it('an expired CloudFront download URL is refreshed mid-download, and the file is verified', async () => {
    // Six 20 MiB ranges, five at a time (RANGE_CONCURRENCY), at 10 MiB/s each: the sixth
    // starts about 2 s in, after the 1 s URL expired.
    const f = await makeFile(fleet.dir, 'CloudFront.pkg', 120 * MiB);
    expect(await (await upload(f.path, { transport: 's3' })).getState()).toBe('completed');
    await fleet.sim.control.setFaults({ presignTtlSeconds: 1, s3BytesPerSecond: 10 * MiB });
    const dest = join(fleet.dir, 'downloaded-cloudfront.pkg');
    const jobId = await producer.download({ fileName: 'CloudFront.pkg', dest });
    const job = await waitForJob(fleet.queue('download'), jobId, 120_000);
    await fleet.sim.control.clearFaults();
    expect(await job.getState(), job.failedReason).toBe('completed');
    const r = job.returnvalue as DownloadResult;
    expect(r.verified).toBe(true);
    expect(r.urlRefreshes).toBeGreaterThanOrEqual(1);
    expect(sha3(r.path)).toBe(sha3(f.path));
  });
});

describe('a record that shows the local hash is not success', () => {
  let fleet: Fleet;
  let producer: Producer;

  beforeAll(async () => {
    // Verification gives up after 3 s per attempt; Jamf processes an uploaded file only 60 s
    // after it arrived (on the package-upload transport refresh-inventory does not hurry it).
    fleet = await startFleet({
      env: { JCDS_VERIFY_TIMEOUT: '3000', JCDS_TRANSPORT: 'package-upload' },
    });
    await fleet.sim.control.setSettings({ processingMs: 60_000 });
    await fleet.startWorker();
    producer = await Producer.connect({ redisUrl: fleet.redis.url });
  });
  afterAll(async () => {
    await producer?.close();
    await fleet?.close();
  });

  it('a record echoing the local hash, before Jamf processed the file, keeps the job from completing', async () => {
    const f = await makeFile(fleet.dir, 'Echoed.pkg', 1 * MiB);
    const local = sha3(f.path);
    const localSha256 = createHash('sha256').update(readFileSync(f.path)).digest('hex');
    // Someone (an older client) wrote the local hash into the record: Jamf shows it back.
    const api = simApi(fleet.sim.info, await simToken(fleet.sim.info));
    const res = await api('/api/v1/packages', {
      method: 'POST',
      json: {
        ...PACKAGE_DEFAULTS,
        packageName: 'Echoed',
        fileName: 'Echoed.pkg',
        hashType: 'SHA3_512',
        hashValue: local,
        sha256: localSha256,
      },
    });
    expect(res.status).toBe(201);
    const { jobId } = await producer.upload({ path: f.path, ifExists: 'replace' });
    const uploads = fleet.queue('upload');
    // Wait for the first attempt to give up on verification.
    const deadline = Date.now() + 45_000;
    let job = await uploads.getJob(jobId);
    while ((job?.stacktrace?.length ?? 0) < 1 && Date.now() < deadline) {
      await new Promise(r => setTimeout(r, 200));
      job = await uploads.getJob(jobId);
    }
    // A retried attempt keeps its error in the job's stack traces (failedReason is for good).
    expect((job?.stacktrace ?? []).join('\n')).toMatch(/\[VERIFY_TIMEOUT\] .*cloudTransferStatus/);
    expect(await job?.getState()).not.toBe('completed');
    await uploads.remove(jobId).catch(() => undefined);
  });
});

describe('no cloud distribution point', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await startFleet({ simArgs: ['--cdn-type', 'NONE'] });
    await fleet.startWorker();
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('cdnType NONE is refused before any S3 call: NO_CLOUD_DISTRIBUTION_POINT, exit 3 from the CLI', async () => {
    await fleet.sim.control.resetCounters();
    const f = await makeFile(fleet.dir, 'Nowhere.pkg', 1 * MiB);
    const run = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [join(ROOT, 'bin/jcds.js'), 'upload', f.path, '--wait'],
        {
          cwd: fleet.dir,
          env: { ...process.env, REDIS_URL: fleet.redis.url },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`jcds upload did not end:\n${stderr}`));
      }, 60_000);
      child.once('exit', code => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).toContain('[NO_CLOUD_DISTRIBUTION_POINT]');
    expect(run.stderr).toContain('Cloud distribution point');
    const c = await fleet.sim.control.counters();
    const s3Calls = ['PutObject', 'CreateMultipartUpload', 'UploadPart'].reduce(
      (n, op) => n + (c.calls[op] ?? 0),
      0,
    );
    expect(s3Calls).toBe(0);
    expect(c.calls['POST /api/v1/jcds/files'] ?? 0).toBe(0);
    expect(c.calls['POST /api/v1/packages'] ?? 0).toBe(0);
  });
});

describe('the preflight and the deprecated JCDS endpoints', () => {
  it('a principal distribution point that is not JCDS (AWS) takes the package-upload transport', async () => {
    const fleet = await startFleet({ simArgs: ['--cdn-type', 'AWS'] });
    const producer = await Producer.connect({ redisUrl: fleet.redis.url });
    try {
      const w = await fleet.startWorker();
      const f = await makeFile(fleet.dir, 'On AWS.pkg', 1 * MiB);
      const { jobId } = await producer.upload({ path: f.path });
      const job = await waitForJob(fleet.queue('upload'), jobId, 120_000);
      expect(await job.getState(), job.failedReason).toBe('completed');
      expect((job.returnvalue as UploadResult).transport).toBe('package-upload');
      expect(w.logs()).toMatch(/"transport":"package-upload","cdnType":"AWS"/);
      const c = await fleet.sim.control.counters();
      expect(c.calls['POST /api/v1/jcds/files'] ?? 0).toBe(0);
    } finally {
      await producer.close();
      await fleet.close();
    }
  });

  it('a Deprecation header on the JCDS endpoints is logged once per worker', async () => {
    const fleet = await startFleet({
      simArgs: ['--deprecation-header'],
      env: { JCDS_TRANSPORT: 's3' },
    });
    const producer = await Producer.connect({ redisUrl: fleet.redis.url });
    try {
      const w = await fleet.startWorker();
      for (const name of ['Deprecated One.pkg', 'Deprecated Two.pkg']) {
        const f = await makeFile(fleet.dir, name, 1 * MiB);
        const { jobId } = await producer.upload({ path: f.path });
        const job = await waitForJob(fleet.queue('upload'), jobId, 120_000);
        expect(await job.getState(), job.failedReason).toBe('completed');
      }
      expect(w.logs().split('Jamf Pro marks this endpoint deprecated').length - 1).toBe(1);
      expect(w.logs()).toContain('2025-08-28');
    } finally {
      await producer.close();
      await fleet.close();
    }
  });
});
